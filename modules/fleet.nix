# One declaration of the fleet: agents and the dashboard take their settings
# from it, so a host is named, addressed and grouped in one place.
{
  config,
  lib,
  ...
}:

let
  cfg = config.cm.fleet;
  me = cfg.hosts.${config.networking.hostName} or null;
  alerting = import ./alert-options.nix { inherit lib; };
  # The fleet's values as defaults of every leaf (a rule's threshold, a
  # route's URLs, a credential's path), so that a host's own rules and
  # routes merge with the fleet's by name and a host's value of one field
  # wins over the fleet's.
  asDefaults = v: if lib.isAttrs v then lib.mapAttrs (_: asDefaults) v else lib.mkDefault v;
in
{
  options.cm.fleet = {
    hosts = lib.mkOption {
      type = lib.types.attrsOf (
        lib.types.submodule {
          options = {
            address = lib.mkOption {
              type = lib.types.str;
              description = "The host's address, as dashboards reach it.";
            };
            port = lib.mkOption {
              type = lib.types.port;
              default = 6130;
              description = "The UDP port its agent serves on.";
            };
            role = lib.mkOption {
              type = lib.types.str;
              default = "server";
              description = "Group in the overview.";
            };
            agent = lib.mkOption {
              type = lib.types.bool;
              default = true;
              description = "Whether the host runs cm-agent.";
            };
          };
        }
      );
      default = { };
      description = "Every host of the fleet, by host name.";
    };

    alerts = alerting.alertsOptions "on every agent host of the fleet (merged with each host's {option}`services.cm-agent.alerts`)";

    notify = alerting.notifyOptions "from every agent host of the fleet (merged with each host's {option}`services.cm-agent.notify`)";

    secretsDir = lib.mkOption {
      type = lib.types.str;
      default = "/run/secrets/cm";
      description = ''
        Where each host finds `ca.pem` and its own `<hostname>.pem` and
        `<hostname>.key` (deployed by agenix, sops-nix or by hand).
      '';
    };
  };

  config = lib.mkMerge [
    (lib.mkIf (me != null && me.agent) {
      services.cm-agent = {
        enable = lib.mkDefault true;
        port = lib.mkDefault me.port;
        settings.tls = {
          ca = lib.mkDefault "${cfg.secretsDir}/ca.pem";
          cert = lib.mkDefault "${cfg.secretsDir}/${config.networking.hostName}.pem";
          key = lib.mkDefault "${cfg.secretsDir}/${config.networking.hostName}.key";
        };
        alerts = asDefaults cfg.alerts;
        notify = asDefaults cfg.notify;
      };
    })
    (lib.mkIf config.programs.cm-dashboard.enable {
      programs.cm-dashboard.hosts = lib.mapAttrs (_: h: {
        inherit (h) address port role;
      }) (lib.filterAttrs (_: h: h.agent) cfg.hosts);
    })
  ];
}
