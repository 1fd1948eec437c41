# Shared by the VM tests: certificates made with `cm-agent pki` when the test
# is built (never committed), and a module that puts them where the fleet
# module looks, outside the Nix store.
{ self, pkgs }:

let
  cm = self.packages.${pkgs.stdenv.hostPlatform.system}.default;
in
rec {
  # A fleet CA with certificates for the given names and roles.
  pki =
    { name, certs }:
    pkgs.runCommand "cm-test-pki-${name}" { } ''
      ${cm}/bin/cm-agent pki init --dir $out --name "${name}"
      ${pkgs.lib.concatMapStringsSep "\n" (
        c: "${cm}/bin/cm-agent pki issue --ca $out --name ${c.name} --role ${c.role} --days 3650"
      ) certs}
    '';

  fleetPki = pki {
    name = "test fleet";
    certs = [
      {
        name = "agent1";
        role = "agent";
      }
      {
        name = "agent2";
        role = "agent";
      }
      {
        name = "dashboard";
        role = "dashboard";
      }
    ];
  };

  # Copies `files` of `from` into /run/secrets/cm before the agent starts.
  secrets = from: files: {
    systemd.services.cm-test-secrets = {
      wantedBy = [ "multi-user.target" ];
      before = [ "cm-agent.service" ];
      requiredBy = [ "cm-agent.service" ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
      };
      script = ''
        install -d -m 0755 /run/secrets/cm
        ${pkgs.lib.concatMapStringsSep "\n" (f: "install -m 0644 ${from}/${f} /run/secrets/cm/${f}") files}
      '';
    };
  };

  agentNode = name: extra: {
    imports = [
      self.nixosModules.default
      (secrets fleetPki [
        "ca.pem"
        "${name}.pem"
        "${name}.key"
      ])
      extra
    ];
    cm.fleet.hosts = fleet;
    services.cm-agent.openFirewall = true;
    # The test VMs have no disks worth asking smartctl about.
    services.cm-agent.settings.collectors.smart = false;
    services.cm-agent.settings.intervals = {
      cpu = 1;
      memory = 1;
    };
  };

  fleet = {
    agent1.address = "agent1";
    agent2.address = "agent2";
    dashboard = {
      address = "dashboard";
      agent = false;
    };
  };

  dashboardNode = {
    imports = [
      self.nixosModules.default
      (secrets fleetPki [
        "ca.pem"
        "dashboard.pem"
        "dashboard.key"
      ])
    ];
    cm.fleet.hosts = fleet;
    programs.cm-dashboard = {
      enable = true;
      tls = {
        ca = "/run/secrets/cm/ca.pem";
        cert = "/run/secrets/cm/dashboard.pem";
        key = "/run/secrets/cm/dashboard.key";
      };
    };
  };
}
