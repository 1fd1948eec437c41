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
      };
    })
    (lib.mkIf config.programs.cm-dashboard.enable {
      programs.cm-dashboard.hosts = lib.mapAttrs (_: h: {
        inherit (h) address port role;
      }) (lib.filterAttrs (_: h: h.agent) cfg.hosts);
    })
  ];
}
