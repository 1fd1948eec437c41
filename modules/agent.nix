{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.cm-agent;
  format = pkgs.formats.toml { };

  # Backup jobs the system declares: NixOS' restic and borgbackup modules make
  # one service (and one timer) per job.
  resticJobs = lib.attrByPath [ "services" "restic" "backups" ] { } config;
  borgJobs = lib.attrByPath [ "services" "borgbackup" "jobs" ] { } config;
  declaredBackups =
    lib.mapAttrsToList (name: _: {
      inherit name;
      kind = "restic";
      unit = "restic-backups-${name}.service";
    }) resticJobs
    ++ lib.mapAttrsToList (name: _: {
      inherit name;
      kind = "borg";
      unit = "borgbackup-job-${name}.service";
    }) borgJobs;

  # The system's own long-running services, watched by name.
  systemServices = lib.mapAttrsToList (name: _: "${name}.service") (
    lib.filterAttrs (
      name: svc: name != "cm-agent" && lib.elem "multi-user.target" (svc.wantedBy or [ ])
    ) config.systemd.services
  );

  # The service runs as a dynamic user that cannot read root's secrets:
  # systemd hands them over as credentials, and the agent reads those.
  credentials = "/run/credentials/cm-agent.service";
  configFile = format.generate "cm-agent.toml" cfg.finalSettings;

  # A wrong setting fails nixos-rebuild, not the boot. (check-config reads the
  # file only; the credentials exist once the service runs.)
  checkedConfig = pkgs.runCommand "cm-agent.toml" { } ''
    ${lib.getExe' cfg.package "cm-agent"} check-config ${configFile}
    cp ${configFile} $out
  '';

  smart = cfg.settings.collectors.smart;

  # What the agent may do beyond an unprivileged user.
  capabilities = [
    # the disk-usage walker reads services' StateDirectory, CacheDirectory
    # and LogsDirectory, which belong to other users
    "CAP_DAC_READ_SEARCH"
  ]
  ++ lib.optionals smart [
    # smartctl: ATA/SCSI pass-through ioctls (SG_IO) on /dev/sd*
    "CAP_SYS_RAWIO"
    # smartctl: NVMe admin commands (the NVME_IOCTL_ADMIN_CMD ioctl)
    "CAP_SYS_ADMIN"
  ];
in
{
  options.services.cm-agent = {
    enable = lib.mkEnableOption "cm-agent, the cm-dashboard agent that collects this host's telemetry and serves it to dashboards";

    package = lib.mkPackageOption pkgs "cm-dashboard" { };

    port = lib.mkOption {
      type = lib.types.port;
      default = 6130;
      description = "UDP port the agent serves on (QUIC).";
    };

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Whether to open {option}`services.cm-agent.port` (UDP) in the firewall.";
    };

    watch = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [
        "gitea.service"
        "immich-server.service"
      ];
      description = "Units watched by name, in addition to the patterns and this system's own services.";
    };

    watchSystemServices = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "Whether to watch every service this NixOS configuration starts at boot.";
    };

    extraPaths = lib.mkOption {
      type = lib.types.attrsOf (lib.types.listOf lib.types.str);
      default = { };
      example = {
        "gitea.service" = [ "/srv/gitea" ];
      };
      description = "Directories counted in a unit's disk usage, beyond its StateDirectory, CacheDirectory and LogsDirectory.";
    };

    finalSettings = lib.mkOption {
      type = format.type;
      readOnly = true;
      internal = true;
      description = "The settings as the agent reads them: TLS paths point at the service's credentials.";
      default = lib.recursiveUpdate cfg.settings {
        tls = {
          ca = "${credentials}/ca.pem";
          cert = "${credentials}/cert.pem";
          key = "${credentials}/key.pem";
        };
      };
    };

    settings = lib.mkOption {
      default = { };
      description = ''
        Configuration of cm-agent, rendered to TOML. See `docs/agent.example.toml`
        for every key; the options below are the ones that matter most.
      '';
      type = lib.types.submodule {
        freeformType = format.type;
        options = {
          host = lib.mkOption {
            type = lib.types.str;
            default = config.networking.hostName;
            defaultText = lib.literalExpression "config.networking.hostName";
            description = "The name this host reports; dashboards dial it by this name and check it against the certificate.";
          };
          listen = lib.mkOption {
            type = lib.types.str;
            default = "[::]:${toString cfg.port}";
            defaultText = lib.literalExpression ''"[::]:''${toString config.services.cm-agent.port}"'';
            description = "UDP address to serve on.";
          };
          tls = {
            ca = lib.mkOption {
              type = lib.types.str;
              example = "/run/agenix/cm-ca.pem";
              description = "Path of the fleet CA certificate.";
            };
            cert = lib.mkOption {
              type = lib.types.str;
              example = "/run/agenix/cm-agent.pem";
              description = "Path of this host's certificate (`cm-agent pki issue --role agent`).";
            };
            key = lib.mkOption {
              type = lib.types.str;
              example = "/run/agenix/cm-agent.key";
              description = "Path of this host's private key. A path, never the key: it must not be in the Nix store.";
            };
          };
          intervals = lib.mapAttrs
            (
              name: default:
              lib.mkOption {
                type = lib.types.numbers.between 0.1 86400;
                inherit default;
                description = "Seconds between two runs of the ${name} collector.";
              }
            )
            {
              cpu = 2;
              memory = 2;
              storage = 10;
              gpu = 5;
              smart = 1800;
            };
          thresholds =
            lib.mapAttrs
              (
                name: default:
                lib.mkOption {
                  type = lib.types.addCheck (lib.types.listOf lib.types.number) (
                    l: lib.length l == 2 && lib.head l <= lib.last l
                  );
                  inherit default;
                  description = "`[ warning critical ]` for ${name} (higher is worse).";
                }
              )
              {
                memory_percent = [
                  80
                  90
                ];
                cpu_celsius = [
                  80
                  90
                ];
                gpu_celsius = [
                  80
                  90
                ];
                filesystem_percent = [
                  85
                  95
                ];
                drive_wear_percent = [
                  70
                  90
                ];
                drive_celsius = [
                  70
                  80
                ];
              }
            // {
              service_restarts = lib.mkOption {
                type = lib.types.ints.positive;
                default = 3;
                description = "Automatic restarts from which a service is a warning.";
              };
            };
          collectors = {
            smart = lib.mkOption {
              type = lib.types.bool;
              default = true;
              description = "Read drive health with smartctl (gives the agent raw disk access).";
            };
            nvidia = lib.mkOption {
              type = lib.types.bool;
              default = false;
              description = "Ask nvidia-smi about NVIDIA GPUs.";
            };
          };
          systemd = {
            enable = lib.mkOption {
              type = lib.types.bool;
              default = true;
              description = "Watch systemd units over D-Bus.";
            };
            patterns = lib.mkOption {
              type = lib.types.listOf lib.types.str;
              default = [ ];
              description = "Glob patterns of loaded units to watch; failed units are always watched.";
            };
            units = lib.mkOption {
              type = lib.types.listOf lib.types.str;
              default = [ ];
              description = "Units watched by name (filled from {option}`services.cm-agent.watch`).";
            };
            extra_paths = lib.mkOption {
              type = lib.types.attrsOf (lib.types.listOf lib.types.str);
              default = { };
              description = "Filled from {option}`services.cm-agent.extraPaths`.";
            };
          };
          backups = lib.mkOption {
            type = lib.types.listOf (
              lib.types.submodule {
                freeformType = format.type;
                options = {
                  name = lib.mkOption { type = lib.types.str; };
                  unit = lib.mkOption {
                    type = lib.types.strMatching ".+\\.service";
                    description = "The service that runs the job.";
                  };
                };
              }
            );
            default = [ ];
            description = "Backup jobs; this system's restic and borgbackup jobs are added.";
          };
        };
      };
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = map (name: {
      assertion = !lib.hasPrefix builtins.storeDir cfg.settings.tls.${name};
      message = "services.cm-agent.settings.tls.${name} is in the Nix store, where every user can read it: give a path to a secret (agenix, sops-nix) instead.";
    }) [ "key" ];

    services.cm-agent.settings = {
      systemd.units = cfg.watch ++ lib.optionals cfg.watchSystemServices systemServices;
      systemd.extra_paths = cfg.extraPaths;
      backups = declaredBackups;
    };

    networking.firewall.allowedUDPPorts = lib.mkIf cfg.openFirewall [ cfg.port ];

    systemd.services.cm-agent = {
      description = "cm-dashboard agent";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      path = lib.optionals smart [ pkgs.smartmontools ];
      serviceConfig = {
        ExecStart = "${lib.getExe' cfg.package "cm-agent"} run --config ${checkedConfig}";
        # Credentials are copied when the service starts: new certificates
        # (agenix, sops-nix) take effect with a restart.
        LoadCredential = [
          "ca.pem:${cfg.settings.tls.ca}"
          "cert.pem:${cfg.settings.tls.cert}"
          "key.pem:${cfg.settings.tls.key}"
        ];
        Restart = "on-failure";
        RestartSec = "5s";

        DynamicUser = true;
        StateDirectory = "cm-agent";
        UMask = "0077";

        CapabilityBoundingSet = capabilities;
        AmbientCapabilities = capabilities;
        # Block devices are readable by the disk group only.
        SupplementaryGroups = lib.optionals smart [ "disk" ];
        # Only SMART needs devices at all.
        PrivateDevices = !smart;
        DevicePolicy = "closed";
        DeviceAllow = lib.optionals smart [
          "block-sd r"
          "block-blkext r"
          "char-nvme r"
        ];

        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = "read-only";
        PrivateTmp = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectProc = "default";
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          # the system bus
          "AF_UNIX"
        ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged"
        ];
      };
    };
  };
}
