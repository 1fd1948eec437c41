{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.programs.cm-dashboard;
  format = pkgs.formats.toml { };

  configFile = format.generate "dashboard.toml" cfg.settings;
  # The check runs the host's binary: skipped when the build machine cannot
  # run it. The settings alone: the certificates are not in the build
  # sandbox (the dashboard checks them when it starts).
  checkedConfig =
    if pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform then
      pkgs.runCommand "dashboard.toml" { } ''
        CM_DASHBOARD_SKIP_FILE_CHECKS=1 ${lib.getExe' cfg.package "cm-dashboard"} --check-config ${configFile}
        cp ${configFile} $out
      ''
    else
      configFile;

  hostType = lib.types.submodule (
    { name, ... }:
    {
      options = {
        address = lib.mkOption {
          type = lib.types.str;
          default = name;
          description = "Where to reach the host: a name or an IP address.";
        };
        port = lib.mkOption {
          type = lib.types.port;
          default = 6130;
          description = "The agent's UDP port.";
        };
        role = lib.mkOption {
          type = lib.types.str;
          default = "";
          example = "server";
          description = "A group for the overview: server, workstation, lab...";
        };
      };
    }
  );
in
{
  options.programs.cm-dashboard = {
    enable = lib.mkEnableOption "cm-dashboard, the terminal dashboard of the fleet, with its fleet file in /etc/cm-dashboard/dashboard.toml";

    package = lib.mkOption {
      type = lib.types.package;
      defaultText = lib.literalMD "this flake's `cm-dashboard` package";
      description = "The package with the `cm-dashboard` binary.";
    };

    hosts = lib.mkOption {
      type = lib.types.attrsOf hostType;
      default = { };
      example = lib.literalExpression ''
        {
          srv01 = { address = "192.168.1.10"; role = "server"; };
          steambox.role = "workstation";
        }
      '';
      description = "The hosts to watch, by the name in their agent's certificate.";
    };

    tls = {
      ca = lib.mkOption {
        type = lib.types.str;
        description = "Path of the fleet CA certificate.";
      };
      cert = lib.mkOption {
        type = lib.types.str;
        description = "Path of the dashboard's certificate (`cm-agent pki issue --role dashboard` or `operator`).";
      };
      key = lib.mkOption {
        type = lib.types.str;
        description = "Path of the dashboard's private key; it must be readable by the users who run cm-dashboard and must not be in the Nix store.";
      };
    };

    settings = lib.mkOption {
      type = format.type;
      default = { };
      description = "The fleet file, rendered to TOML; filled from {option}`programs.cm-dashboard.hosts` and `tls`.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = !lib.hasPrefix builtins.storeDir cfg.tls.key;
        message = "programs.cm-dashboard.tls.key is in the Nix store, where every user can read it: give a path to a secret instead.";
      }
    ];

    programs.cm-dashboard.settings = {
      tls = {
        inherit (cfg.tls) ca cert key;
      };
      hosts = lib.mapAttrsToList (name: h: {
        inherit name;
        inherit (h) address port role;
      }) cfg.hosts;
    };

    environment.systemPackages = [ cfg.package ];
    environment.etc."cm-dashboard/dashboard.toml".source = checkedConfig;
  };
}
