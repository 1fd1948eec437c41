# Evaluates the NixOS modules with nixpkgs' lib alone (no nixpkgs, no builds):
# a stub declares the NixOS options the modules set, and a stub `pkgs` gives
# them what they ask for. Prints a JSON report for tests/nix/run.sh to check.
#
#   nix eval --impure --json --expr 'import ./tests/nix/eval.nix { lib = import <nixpkgs.lib>/lib; }'
{
  lib,
  # Set to "badPort" or "badInterval" to evaluate one wrong configuration in
  # full, so that Nix stops with the module's own error message.
  case ? null,
}:

let
  stubPackage = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
    meta.mainProgram = name;
  };

  pkgs = {
    cm-dashboard = stubPackage "cm-dashboard";
    smartmontools = stubPackage "smartmontools";
    coreutils = stubPackage "coreutils";
    stdenv = {
      hostPlatform.system = "x86_64-linux";
      buildPlatform.canExecute = _: true;
    };

    formats.toml = _: {
      type = lib.types.attrsOf lib.types.anything;
      generate = name: _value: stubPackage name;
    };
    runCommand = name: _env: _script: stubPackage name;
  };

  # The NixOS options our modules set, loosely typed.
  nixosStub =
    { lib, ... }:
    let
      anyAttrs = lib.mkOption {
        type = lib.types.attrsOf lib.types.anything;
        default = { };
      };
    in
    {
      options = {
        assertions = lib.mkOption {
          type = lib.types.listOf lib.types.anything;
          default = [ ];
        };
        networking.hostName = lib.mkOption {
          type = lib.types.str;
          default = "nixos";
        };
        networking.firewall.allowedUDPPorts = lib.mkOption {
          type = lib.types.listOf lib.types.port;
          default = [ ];
        };
        networking.firewall.allowedTCPPorts = lib.mkOption {
          type = lib.types.listOf lib.types.port;
          default = [ ];
        };
        systemd.services = lib.mkOption {
          type = lib.types.attrsOf (
            lib.types.submodule {
              freeformType = lib.types.attrsOf lib.types.anything;
              options.wantedBy = lib.mkOption {
                type = lib.types.listOf lib.types.str;
                default = [ ];
              };
              options.serviceConfig = lib.mkOption {
                type = lib.types.attrsOf lib.types.anything;
                default = { };
              };
            }
          );
          default = { };
        };
        environment.systemPackages = lib.mkOption {
          type = lib.types.listOf lib.types.anything;
          default = [ ];
        };
        environment.etc = anyAttrs;
        users.users = anyAttrs;
        users.groups = anyAttrs;
        services.xserver.videoDrivers = lib.mkOption {
          type = lib.types.listOf lib.types.str;
          default = [ ];
        };
        hardware.nvidia.package = lib.mkOption {
          type = lib.types.anything;
          default = null;
        };
        services.restic.backups = anyAttrs;
        services.borgbackup.jobs = anyAttrs;
      };
    };

  eval =
    modules:
    lib.evalModules {
      modules = [
        nixosStub
        ../../modules/agent.nix
        ../../modules/dashboard.nix
        ../../modules/fleet.nix
        {
          _module.args = { inherit pkgs; };
          services.cm-agent.package = stubPackage "cm-agent";
          programs.cm-dashboard.package = stubPackage "cm-dashboard";
        }
      ]
      ++ modules;
    };

  # Every option our modules declare, and whether it says what it is for.
  undocumented = lib.filter (o: o.description or null == null || o.description == "") (
    lib.filter (o: lib.any (p: lib.hasPrefix p o.name) [ "services.cm-agent" "programs.cm-dashboard" "cm.fleet" ]) (
      lib.optionAttrSetToDocList (eval [ ]).options
    )
  );

  tls = {
    ca = "/run/secrets/cm/ca.pem";
    cert = "/run/secrets/cm/srv01.pem";
    key = "/run/secrets/cm/srv01.key";
  };

  agent =
    extra:
    (eval [
      {
        networking.hostName = "srv01";
        services.cm-agent = {
          enable = true;
          settings.tls = tls;
        };
      }
      extra
    ]).config;

  failedAssertions = config: map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  # The error an evaluation stops with, or null.
  errorOf =
    modules:
    let
      r = builtins.tryEval (builtins.deepSeq (eval modules).config.services.cm-agent.settings true);
    in
    if r.success then null else "failed";

  defaults = agent { };
  withJobs = agent {
    services.restic.backups.b2 = {
      repository = "b2:x";
    };
    services.borgbackup.jobs.lab = {
      repo = "borg@x";
    };
    services.cm-agent.watch = [ "vaultwarden.service" ];
    services.cm-agent.extraPaths."gitea.service" = [ "/srv/gitea" ];
    systemd.services.gitea.wantedBy = [ "multi-user.target" ];
    systemd.services.graphical.wantedBy = [ "graphical.target" ];
    systemd.services.disabled = {
      wantedBy = [ "multi-user.target" ];
      enable = false;
    };
    systemd.services.vaultwarden.wantedBy = [ "multi-user.target" ];
    systemd.services.oneshot-at-boot = { };
  };
  noSmart = agent {
    services.cm-agent.settings.collectors.smart = false;
    services.cm-agent.openFirewall = true;
    services.cm-agent.port = 7000;
  };
  nvidiaHost = agent {
    services.xserver.videoDrivers = [ "nvidia" ];
    hardware.nvidia.package = {
      bin = stubPackage "nvidia-x11-bin";
    };
  };
  systemdOff = agent {
    services.restic.backups.b2 = {
      repository = "b2:x";
    };
    services.cm-agent.settings.systemd.enable = false;
    services.cm-agent.settings.collectors.smart = false;
  };
  listenElsewhere = agent { services.cm-agent.settings.listen = "[::]:7000"; };
  withMetrics = agent {
    services.cm-agent.metrics = {
      enable = true;
      address = "[::]";
      tls = true;
      openFirewall = true;
    };
  };
  plainMetricsElsewhere = agent {
    services.cm-agent.metrics = {
      enable = true;
      address = "0.0.0.0";
    };
  };
  # What tests/nix/harness.sh installs into a real systemd: the test units there.
  harness =
    (eval [
      {
        networking.hostName = "srv01";
        services.cm-agent = {
          enable = true;
          # Root-only secret files, where a deployment tool leaves them.
          settings.tls = {
            ca = "/var/lib/cm-secrets/ca.pem";
            cert = "/var/lib/cm-secrets/srv01.pem";
            key = "/var/lib/cm-secrets/srv01.key";
          };
          watch = [
            "cm-healthy.service"
            "cm-flapping.service"
            "cm-dynamic.service"
          ];
        };
      }
    ]).config;
  keyInStore = agent { services.cm-agent.settings.tls.key = lib.mkForce "/nix/store/abc-srv01.key"; };
  fleet =
    (eval [
      {
        networking.hostName = "cmbox";
        cm.fleet.hosts = {
          srv01 = {
            address = "192.168.1.10";
            role = "server";
          };
          cmbox = {
            address = "192.168.1.11";
            role = "server";
          };
          printer = {
            address = "192.168.1.50";
            agent = false;
          };
        };
        programs.cm-dashboard = {
          enable = true;
          tls = tls // {
            cert = "/run/secrets/cm/operator.pem";
          };
        };
      }
    ]).config;

  # Alert rules of every kind and every key, two routes, a secret.
  withAlerts = agent {
    services.cm-agent.alerts = {
      builtin = {
        for = "0s";
        keepFiringFor = "1m";
        route = "pager";
      };
      flapWindow = "5m";
      flapChanges = 4;
      rules = {
        scratch-full = {
          series = "fs./srv/scratch.used_percent";
          warn = 50;
          crit = 90.5;
          clear = 40;
          below = false;
          for = "30s";
          keepFiringFor = "1m";
          match = "any";
          route = "ops";
          notify = true;
        };
        low-memory = {
          series = "memory.available_bytes";
          warn = 1073741824;
          below = true;
          match = "all";
          notify = false;
        };
        scratch-and-memory = {
          condition = "scratch-full and not low-memory";
          severity = "critical";
        };
        disks-fill = {
          series = "fs.*.used_percent";
          fullWithin = "7d";
        };
        no-gpu = {
          series = "gpu.*.temperature_celsius";
          absentFor = "10m";
        };
        backups-stale = {
          backup = "restic-*";
          noSuccessFor = "26h";
          severity = "critical";
          route = "pager";
        };
        dropped = {
          series = "cpu.load1";
          crit = 64;
          enable = false;
        };
      };
    };
    services.cm-agent.notify = {
      defaultRoute = "ops";
      groupWait = "10s";
      routes.ops.urls = [
        "smtp://cm@mail.example.org:587/?to=ops@example.org&password_file=/run/credentials/cm-agent.service/smtp-password"
        "ntfy://ntfy.example.org/cm-alerts"
      ];
      routes.pager = {
        urls = [ "ntfy://ntfy.example.org/cm-pager?token_file=/run/credentials/cm-agent.service/ntfy-token" ];
        repeat = "0s";
        sendResolved = false;
      };
      credentials = {
        smtp-password = "/run/secrets/smtp";
        ntfy-token = "/run/secrets/ntfy";
      };
    };
  };
  # What a mistaken alert configuration fails with.
  unknownRoute = agent {
    services.cm-agent.alerts.rules.scratch-full = {
      series = "fs./srv/scratch.used_percent";
      crit = 90;
      route = "pager";
    };
    services.cm-agent.notify.routes.ops.urls = [ "ntfy://ntfy.example.org/cm-alerts" ];
  };
  noRoutes = agent { services.cm-agent.alerts.builtin.route = "ops"; };
  twoRoutesNoDefault = agent {
    services.cm-agent.notify.routes = {
      ops.urls = [ "ntfy://ntfy.example.org/ops" ];
      dev.urls = [ "ntfy://ntfy.example.org/dev" ];
    };
  };
  secretInUrl = agent {
    services.cm-agent.notify.routes.ops.urls = [
      "smtp://cm:hunter2@mail.example.org:587/?to=ops@example.org"
      "ntfy://ntfy.example.org/cm?token=abc"
      "smtp://cm@mail.example.org:587/?to=ops@example.org&password_file=/run/credentials/cm-agent.service/smtp-password"
    ];
  };
  badCredentials = agent {
    services.cm-agent.notify.credentials = {
      "key.pem" = "/run/secrets/other.key";
      "a/b" = "/run/secrets/x";
      in-store = "/nix/store/abc-password";
      relative = "secrets/x";
    };
  };
  # A fleet's rules and routes, and a host's own, on one of its agents.
  fleetAlerts =
    (eval [
      {
        networking.hostName = "srv01";
        cm.fleet.hosts.srv01.address = "192.168.1.10";
        cm.fleet.alerts = {
          builtin.for = "2m";
          rules = {
            disks-fill = {
              series = "fs.*.used_percent";
              fullWithin = "7d";
            };
            hot-cpu = {
              series = "cpu.temperature_celsius";
              warn = 85;
              crit = 95;
            };
            no-backup = {
              backup = "*";
              noSuccessFor = "26h";
            };
          };
        };
        cm.fleet.notify = {
          defaultRoute = "ops";
          routes.ops.urls = [ "smtp://cm@mail.example.org:587/?to=ops@example.org&password_file=/run/credentials/cm-agent.service/smtp-password" ];
          credentials.smtp-password = "/run/secrets/cm/smtp-password";
        };
        # srv01's own: a rule, a route, a hotter CPU, no dead-man's switch.
        services.cm-agent.alerts = {
          rules.scratch-full = {
            series = "fs./srv/scratch.used_percent";
            crit = 90;
            route = "srv01-owner";
          };
          rules.hot-cpu.crit = 100;
          rules.no-backup.enable = false;
        };
        services.cm-agent.notify.routes.srv01-owner.urls = [ "ntfy://ntfy.example.org/srv01" ];
      }
    ]).config;
  bad = {
    badPort = {
      services.cm-agent = {
        enable = true;
        port = 70000;
        settings.tls = tls;
      };
    };
    badInterval = {
      services.cm-agent = {
        enable = true;
        settings.tls = tls;
        settings.intervals.cpu = 0;
      };
    };
    badSpan = {
      services.cm-agent = {
        enable = true;
        settings.tls = tls;
        settings.history.retention_raw = "forever";
      };
    };
    badRuleSpan = {
      services.cm-agent = {
        enable = true;
        settings.tls = tls;
        alerts.rules.scratch-full.for = "soon";
      };
    };
    badMatch = {
      services.cm-agent = {
        enable = true;
        settings.tls = tls;
        alerts.rules.scratch-full.match = "most";
      };
    };
    badThreshold = {
      services.cm-agent = {
        enable = true;
        settings.tls = tls;
        settings.thresholds.drive_wear_percent = [
          90
          70
        ];
      };
    };
  };
in
if case != null then
  (eval [ bad.${case} ]).config.services.cm-agent.settings
else
{
  defaults = {
    settings = defaults.services.cm-agent.settings;
    finalSettings = defaults.services.cm-agent.finalSettings;
    service = defaults.systemd.services.cm-agent;
    firewall = defaults.networking.firewall.allowedUDPPorts;
    assertions = failedAssertions defaults;
  };
  withJobs.settings = withJobs.services.cm-agent.settings;
  harness = {
    service = harness.systemd.services.cm-agent;
    collector = harness.systemd.services.cm-agent-collector;
    users = harness.users;
    finalSettings = harness.services.cm-agent.finalSettings;
  };
  defaults.collector = defaults.systemd.services.cm-agent-collector;
  defaults.users = defaults.users;
  nvidiaHost = {
    finalSettings = nvidiaHost.services.cm-agent.finalSettings;
    service = nvidiaHost.systemd.services.cm-agent;
  };
  systemdOff = {
    settings = systemdOff.services.cm-agent.settings;
    collector = systemdOff.systemd.services.cm-agent-collector or null;
    assertions = failedAssertions systemdOff;
  };
  listenElsewhere.assertions = failedAssertions listenElsewhere;
  withMetrics = {
    finalSettings = withMetrics.services.cm-agent.finalSettings;
    tcp = withMetrics.networking.firewall.allowedTCPPorts;
    assertions = failedAssertions withMetrics;
  };
  plainMetricsElsewhere.assertions = failedAssertions plainMetricsElsewhere;
  undocumented = map (o: o.name) undocumented;
  noSmart = {
    settings = noSmart.services.cm-agent.settings;
    service = noSmart.systemd.services.cm-agent;
    collector = noSmart.systemd.services.cm-agent-collector;
    firewall = noSmart.networking.firewall.allowedUDPPorts;
  };
  keyInStore.assertions = failedAssertions keyInStore;
  badPort = errorOf [ bad.badPort ];
  badInterval = errorOf [ bad.badInterval ];
  withAlerts = {
    finalSettings = withAlerts.services.cm-agent.finalSettings;
    service = withAlerts.systemd.services.cm-agent;
    assertions = failedAssertions withAlerts;
  };
  unknownRoute.assertions = failedAssertions unknownRoute;
  noRoutes.assertions = failedAssertions noRoutes;
  twoRoutesNoDefault.assertions = failedAssertions twoRoutesNoDefault;
  secretInUrl.assertions = failedAssertions secretInUrl;
  badCredentials.assertions = failedAssertions badCredentials;
  fleetAlerts = {
    finalSettings = fleetAlerts.services.cm-agent.finalSettings;
    service = fleetAlerts.systemd.services.cm-agent;
    assertions = failedAssertions fleetAlerts;
  };
  fleet = {
    agentEnabled = fleet.services.cm-agent.enable;
    agentTls = fleet.services.cm-agent.settings.tls;
    dashboard = fleet.programs.cm-dashboard.settings;
    etc = builtins.attrNames fleet.environment.etc;
  };
}
