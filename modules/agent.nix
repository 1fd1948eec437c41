{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.cm-agent;
  format = pkgs.formats.toml { };
  alerting = import ./alert-options.nix { inherit lib; };
  # A span as the agent reads it (declared with the alert options, which use it too).
  inherit (alerting) span;

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

  # The system's own services that start at boot (wanted by any target),
  # watched by name; disabled ones and those already in `watch` are left out.
  ours = [
    "cm-agent"
    "cm-agent-collector"
  ];
  systemServices = lib.mapAttrsToList (name: _: "${name}.service") (
    lib.filterAttrs (
      name: svc:
      !lib.elem name ours
      && (svc.enable or true)
      && lib.any (lib.hasSuffix ".target") (svc.wantedBy or [ ])
    ) config.systemd.services
  );
  watchedUnits = lib.unique (cfg.watch ++ lib.optionals cfg.watchSystemServices systemServices);

  # The agent runs as the static user cm-agent (dbus-daemon drops dynamic
  # users' connections): systemd hands it the secrets as credentials.
  credentials = "/run/credentials/cm-agent.service";
  tlsCredentials = [
    "ca.pem"
    "cert.pem"
    "key.pem"
  ];
  routes = lib.attrNames cfg.notify.routes;
  # Every route a setting names, with the option that names it.
  namedRoutes =
    lib.optional (cfg.alerts.builtin.route != null) {
      option = "services.cm-agent.alerts.builtin.route";
      route = cfg.alerts.builtin.route;
    }
    ++ lib.optional (cfg.notify.defaultRoute != null) {
      option = "services.cm-agent.notify.defaultRoute";
      route = cfg.notify.defaultRoute;
    }
    ++ lib.mapAttrsToList (name: r: {
      option = "services.cm-agent.alerts.rules.${name}.route";
      inherit (r) route;
    }) (lib.filterAttrs (_: r: r.enable && r.route != null) cfg.alerts.rules);
  # A password in a URL would be in the world-readable store.
  secretInUrl =
    url:
    builtins.match ".*[?&](password|token)=.*" url != null
    || builtins.match "[A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*:[^/?#@]*@.*" url != null;
  configFile = format.generate "cm-agent.toml" cfg.finalSettings;

  # A wrong setting fails nixos-rebuild, not the boot. (--no-files: the
  # certificates exist once the service runs, not in the build sandbox; the
  # agent checks them when it starts.) The check runs the host's binary, so
  # it is skipped when the build machine cannot run it.
  canRun = pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform;
  checkedConfig =
    if canRun then
      pkgs.runCommand "cm-agent.toml" { } ''
        ${lib.getExe' cfg.package "cm-agent"} check-config --no-files ${configFile}
        cp ${configFile} $out
      ''
    else
      configFile;

  smart = cfg.settings.collectors.smart;
  services = cfg.settings.systemd.enable;
  # The privileged collector runs when it has something to do.
  collector = smart || services;
  results = "/run/cm-agent-collector/results.cbor";

  # NVIDIA: the driver's own nvidia-smi, and its devices.
  nvidia = cfg.settings.collectors.nvidia;
  # The NVIDIA driver is in use when X or the datacenter setup asks for it;
  # only then is hardware.nvidia.package looked at.
  nvidiaInUse =
    lib.elem "nvidia" (lib.attrByPath [ "services" "xserver" "videoDrivers" ] [ ] config)
    || lib.attrByPath [ "hardware" "nvidia" "datacenter" "enable" ] false config;
  nvidiaDriver = if nvidiaInUse then lib.attrByPath [ "hardware" "nvidia" "package" ] null config else null;
  nvidiaSmi =
    if cfg.nvidiaSmi != null then
      cfg.nvidiaSmi
    else if nvidiaDriver != null then
      lib.getExe' nvidiaDriver.bin "nvidia-smi"
    else
      "nvidia-smi";

  # What the privileged collector may do beyond an unprivileged user.
  collectorCapabilities =
    lib.optionals services [
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

  # Sandboxing both units share.
  hardening = {
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
    UMask = "0077";
    Restart = "on-failure";
    RestartSec = "5s";
  };
in
{
  options.services.cm-agent = {
    enable = lib.mkEnableOption "cm-agent, the cm-dashboard agent that collects this host's telemetry and serves it to dashboards";

    package = lib.mkOption {
      type = lib.types.package;
      defaultText = lib.literalMD "this flake's `cm-agent` package";
      description = "The package with the `cm-agent` binary.";
    };

    nvidiaSmi = lib.mkOption {
      type = lib.types.nullOr lib.types.str;
      default = null;
      example = "/run/current-system/sw/bin/nvidia-smi";
      description = ''
        The nvidia-smi the agent runs when {option}`services.cm-agent.settings.collectors.nvidia`
        is on. By default the one of {option}`hardware.nvidia.package`.
      '';
    };

    port = lib.mkOption {
      type = lib.types.port;
      default = 6130;
      description = "UDP port the agent serves on (QUIC).";
    };

    openFirewall = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Whether to open {option}`services.cm-agent.port` (UDP) in the firewall; the agent listens on that port.";
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
      description = "Whether to watch every enabled service this NixOS configuration starts at boot (wanted by a target).";
    };

    extraPaths = lib.mkOption {
      type = lib.types.attrsOf (lib.types.listOf lib.types.str);
      default = { };
      example = {
        "gitea.service" = [ "/srv/gitea" ];
      };
      description = "Directories counted in a unit's disk usage, beyond its StateDirectory, CacheDirectory and LogsDirectory.";
    };

    metrics = {
      enable = lib.mkEnableOption "the agent's Prometheus endpoint (`/metrics`), fed from the snapshot it already has";
      address = lib.mkOption {
        type = lib.types.str;
        default = "127.0.0.1";
        example = "[::]";
        description = "Address `/metrics` listens on. Plain HTTP is served on loopback only: another address needs {option}`services.cm-agent.metrics.tls`.";
      };
      port = lib.mkOption {
        type = lib.types.port;
        default = 9130;
        description = "TCP port of `/metrics`.";
      };
      tls = lib.mkOption {
        type = lib.types.bool;
        default = false;
        description = "Serve HTTPS with the agent's certificate and require a client certificate from the fleet CA with role dashboard or operator (`cm-agent pki issue --name prometheus --role dashboard`; Prometheus presents it with `tls_config`).";
      };
      openFirewall = lib.mkOption {
        type = lib.types.bool;
        default = false;
        description = "Open {option}`services.cm-agent.metrics.port` (TCP) in the firewall.";
      };
    };
    alerts = alerting.alertsOptions "on this host";

    notify = alerting.notifyOptions "from this host";

    finalSettings = lib.mkOption {
      type = format.type;
      readOnly = true;
      internal = true;
      description = "The settings as the agent reads them: TLS paths point at the service's credentials.";
      default = lib.recursiveUpdate cfg.settings (
        {
          tls = {
            ca = "${credentials}/ca.pem";
            cert = "${credentials}/cert.pem";
            key = "${credentials}/key.pem";
          };
        }
        // lib.optionalAttrs collector { privileged.results = results; }
        // lib.optionalAttrs nvidia { collectors.nvidia_smi = nvidiaSmi; }
      );
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
            description = "UDP address to serve on; its port must be {option}`services.cm-agent.port`.";
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
              services = 10;
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
              default = nvidiaInUse;
              defaultText = lib.literalMD "whether the NVIDIA driver is in use";
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
          history = {
            enable = lib.mkOption {
              type = lib.types.bool;
              default = true;
              description = "Keep the history of every series in /var/lib/cm-agent/history.sqlite, for charts, export and forecasts.";
            };
            retention_raw = lib.mkOption {
              type = span;
              default = "48h";
              description = "How long raw samples (one per interval) are kept.";
            };
            retention_minutes = lib.mkOption {
              type = span;
              default = "30d";
              description = "How long per-minute rollups (min, max, mean, count) are kept.";
            };
            retention_hours = lib.mkOption {
              type = span;
              default = "2y";
              description = "How long per-hour rollups are kept.";
            };
            max_bytes = lib.mkOption {
              type = lib.types.ints.positive;
              default = 268435456;
              description = "The most the history file may hold; past it, the finest tier is kept for less time.";
            };
            forecast_min_span = lib.mkOption {
              type = span;
              default = "7d";
              description = "The least history a disk-full or wear-out forecast is made from.";
            };
          };
          backups = lib.mkOption {
            type = lib.types.listOf (
              lib.types.submodule {
                freeformType = format.type;
                options = {
                  name = lib.mkOption {
                    type = lib.types.str;
                    description = "The job's name, as the backups panel shows it.";
                  };
                  unit = lib.mkOption {
                    type = lib.types.strMatching ".+\\.service";
                    description = "The service that runs the job.";
                  };
                };
              }
            );
            default = [ ];
            description = "Backup jobs; this system's restic and borgbackup jobs are added (when {option}`services.cm-agent.settings.systemd.enable` is on: they are systemd units).";
          };
        };
      };
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = !lib.hasPrefix builtins.storeDir cfg.settings.tls.key;
        message = "services.cm-agent.settings.tls.key is in the Nix store, where every user can read it: give a path to a secret (agenix, sops-nix) instead.";
      }
      {
        assertion = lib.last (lib.splitString ":" cfg.settings.listen) == toString cfg.port;
        message = "services.cm-agent.settings.listen (${cfg.settings.listen}) must use services.cm-agent.port (${toString cfg.port}): the firewall opens that port.";
      }
      {
        assertion = !cfg.metrics.enable || cfg.metrics.tls || lib.elem cfg.metrics.address [ "127.0.0.1" "[::1]" ];
        message = "services.cm-agent.metrics.address = ${cfg.metrics.address} without services.cm-agent.metrics.tls: plain HTTP is served on loopback only.";
      }
      {
        assertion = cfg.settings.backups == [ ] || services;
        message = "services.cm-agent.settings.backups needs services.cm-agent.settings.systemd.enable: backup jobs are systemd units.";
      }
      {
        assertion = cfg.notify.defaultRoute != null || lib.length routes <= 1;
        message = "services.cm-agent.notify.routes has ${toString (lib.length routes)} routes (${lib.concatStringsSep ", " routes}): set services.cm-agent.notify.defaultRoute to one of them, attribute sets have no order.";
      }
    ]
    ++ map (n: {
      assertion = lib.elem n.route routes;
      message = "${n.option} = \"${n.route}\" is no route of services.cm-agent.notify.routes (${
        if routes == [ ] then "none is declared" else "declared: ${lib.concatStringsSep ", " routes}"
      }); cm.fleet.notify.routes are declared there too.";
    }) namedRoutes
    ++ lib.flatten (
      lib.mapAttrsToList (
        name: r:
        # (the message leaves the URL out: it would print the secret)
        lib.imap1 (i: url: {
          assertion = !secretInUrl url;
          message = "services.cm-agent.notify.routes.${name}.urls: URL ${toString i} has a password or token in it, which would be in the world-readable Nix store: name a file with password_file= or token_file= instead, and give it with services.cm-agent.notify.credentials.";
        }) r.urls
      ) cfg.notify.routes
    )
    ++ lib.mapAttrsToList (name: path: {
      assertion =
        builtins.match "[A-Za-z0-9_.-]+" name != null
        && !lib.elem name ([ "." ".." ] ++ tlsCredentials)
        && lib.hasPrefix "/" path
        && !lib.hasPrefix builtins.storeDir path;
      message = "services.cm-agent.notify.credentials.${name} = ${path}: a credential is a name of letters, digits, '.', '_' or '-' other than ${lib.concatStringsSep ", " tlsCredentials} (the agent's own), and an absolute path outside the Nix store.";
    }) cfg.notify.credentials;

    services.cm-agent.settings = {
      metrics = lib.mkIf cfg.metrics.enable {
        listen = "${cfg.metrics.address}:${toString cfg.metrics.port}";
        inherit (cfg.metrics) tls;
      };
      systemd.units = watchedUnits;
      systemd.extra_paths = cfg.extraPaths;
      backups = lib.mkIf services declaredBackups;
    }
    // alerting.toSettings { inherit (cfg) alerts notify; };

    users.users.cm-agent = {
      isSystemUser = true;
      group = "cm-agent";
      description = "cm-dashboard agent";
    };
    users.users.cm-agent-collector = lib.mkIf collector {
      isSystemUser = true;
      # Its results are readable by the agent's group.
      group = "cm-agent";
      description = "cm-dashboard agent, privileged collector";
    };
    users.groups.cm-agent = { };

    networking.firewall.allowedUDPPorts = lib.mkIf cfg.openFirewall [ cfg.port ];
    networking.firewall.allowedTCPPorts = lib.mkIf (cfg.metrics.enable && cfg.metrics.openFirewall) [ cfg.metrics.port ];

    # The network-facing agent holds no capability at all: what needs
    # privilege runs in cm-agent-collector, which has no network.
    systemd.services.cm-agent = {
      description = "cm-dashboard agent";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ] ++ lib.optional collector "cm-agent-collector.service";
      after = [ "network-online.target" ] ++ lib.optional collector "cm-agent-collector.service";
      serviceConfig = hardening // {
        ExecStart = "${lib.getExe' cfg.package "cm-agent"} run --config ${checkedConfig}";
        # SIGHUP reloads the certificates; credentials are copied when the
        # service starts, so new files (agenix, sops-nix) need a restart.
        ExecReload = "${lib.getExe' pkgs.coreutils "kill"} -HUP $MAINPID";
        # Notification secrets come the same way: a route's URL names
        # /run/credentials/cm-agent.service/NAME (services.cm-agent.notify.credentials).
        LoadCredential = [
          "ca.pem:${cfg.settings.tls.ca}"
          "cert.pem:${cfg.settings.tls.cert}"
          "key.pem:${cfg.settings.tls.key}"
        ]
        ++ lib.mapAttrsToList (name: path: "${name}:${path}") cfg.notify.credentials;
        User = "cm-agent";
        Group = "cm-agent";
        # /var/lib/cm-agent, owned by the static user: nothing else is
        # hidden. It holds the history, which only the agent reads.
        StateDirectory = "cm-agent";
        StateDirectoryMode = "0700";
        CapabilityBoundingSet = "";
        AmbientCapabilities = "";
        # No device at all, unless NVIDIA's.
        PrivateDevices = !nvidia;
        DevicePolicy = "closed";
        # (the device classes nixpkgs' own GPU services allow)
        DeviceAllow = lib.optionals nvidia [
          "char-nvidiactl"
          "char-nvidia-caps"
          "char-nvidia-frontend"
          "char-nvidia-uvm"
        ];
        # Notifications need nothing more: SMTP and HTTP are TCP over
        # AF_INET/AF_INET6, which serving QUIC already needs; names resolve
        # through nscd (AF_UNIX) or DNS (AF_INET*); the agent has its TLS
        # roots built in. There is no IPAddressDeny to loosen, so routes
        # change nothing here.
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          # the system bus
          "AF_UNIX"
        ];
      };
    };

    # SMART pass-through and walks of other services' directories: the
    # capabilities, and no network, so systemd enforces the split.
    systemd.services.cm-agent-collector = lib.mkIf collector {
      description = "cm-dashboard agent, privileged collector (SMART, service disk usage)";
      wantedBy = [ "multi-user.target" ];
      path = lib.optionals smart [ pkgs.smartmontools ];
      serviceConfig = hardening // {
        ExecStart = "${lib.getExe' cfg.package "cm-agent"} collect-privileged --config ${checkedConfig}";
        User = "cm-agent-collector";
        Group = "cm-agent";
        RuntimeDirectory = "cm-agent-collector";
        RuntimeDirectoryMode = "0750";
        # Results are read by the agent's group.
        UMask = "0027";
        CapabilityBoundingSet = collectorCapabilities;
        AmbientCapabilities = collectorCapabilities;
        # Block devices are readable by the disk group only.
        SupplementaryGroups = lib.optionals smart [ "disk" ];
        PrivateDevices = !smart;
        DevicePolicy = "closed";
        # Every disk kind the storage collector reports, so that none shows
        # "unknown" for want of access.
        DeviceAllow = lib.optionals smart [
          "block-sd r"
          "block-blkext r"
          "block-virtblk r"
          "block-mmc r"
          "block-xvd r"
          "char-nvme r"
        ];
        PrivateNetwork = true;
        IPAddressDeny = "any";
        # the system bus only
        RestrictAddressFamilies = [ "AF_UNIX" ];
      };
    };
  };
}
