# A client with a certificate from another CA is refused, and the agent says
# so; an agent with a certificate from another CA is refused by the dashboard,
# which says why.
{ self, pkgs }:

let
  common = import ./common.nix { inherit self pkgs; };
  foreign = common.pki {
    name = "another fleet";
    certs = [
      {
        name = "intruder";
        role = "operator";
      }
      {
        name = "rogue";
        role = "agent";
      }
    ];
  };
  # The fleet's dashboard, told about a host whose agent the fleet CA never signed.
  dashboardConfig = pkgs.writeText "dashboard.toml" ''
    [tls]
    ca = "/run/secrets/cm/ca.pem"
    cert = "/run/secrets/cm/dashboard.pem"
    key = "/run/secrets/cm/dashboard.key"

    [[hosts]]
    name = "rogue"
  '';
  # The intruder trusts the fleet's CA, to reach agent1, and its own, which
  # signed its certificate (the dashboard does not start with a certificate
  # that no CA in tls.ca signed).
  intruderCa = pkgs.runCommand "intruder-ca.pem" { } ''
    cat ${common.fleetPki}/ca.pem ${foreign}/ca.pem > $out
  '';
  foreignConfig = pkgs.writeText "intruder.toml" ''
    [tls]
    ca = "${intruderCa}"
    cert = "${foreign}/intruder.pem"
    key = "/run/intruder.key"

    [[hosts]]
    name = "agent1"
  '';
in
{
  name = "cm-foreign-ca";

  nodes = {
    agent1 = common.agentNode "agent1" { };
    intruder = {
      imports = [ self.nixosModules.default ];
      environment.systemPackages = [ self.packages.${pkgs.stdenv.hostPlatform.system}.default ];
    };
    # An agent whose certificate comes from another fleet's CA.
    rogue = {
      imports = [
        self.nixosModules.default
        (common.secrets foreign [
          "ca.pem"
          "rogue.pem"
          "rogue.key"
        ])
      ];
      networking.firewall.allowedUDPPorts = [ 6130 ];
      services.cm-agent = {
        enable = true;
        settings.collectors.smart = false;
        settings.tls = {
          ca = "/run/secrets/cm/ca.pem";
          cert = "/run/secrets/cm/rogue.pem";
          key = "/run/secrets/cm/rogue.key";
        };
      };
    };
    dashboard = common.dashboardNode;
  };

  testScript = ''
    start_all()
    agent1.wait_for_unit("cm-agent.service")
    agent1.wait_until_succeeds("journalctl -u cm-agent | grep -q 'serving'")
    intruder.wait_for_unit("multi-user.target")
    intruder.succeed("install -m 0600 ${foreign}/intruder.key /run/intruder.key")

    with subtest("refused on both sides"):
        intruder.fail("cm-dashboard --once --json --wait 5 --config ${foreignConfig}")
        agent1.wait_until_succeeds("journalctl -u cm-agent | grep -q 'refused'")

    with subtest("the dashboard refuses an agent from another CA and says why"):
        import json
        rogue.wait_for_unit("cm-agent.service")
        rogue.wait_until_succeeds("journalctl -u cm-agent | grep -q 'serving'")
        dashboard.wait_for_unit("multi-user.target")
        status, out = dashboard.execute("cm-dashboard --once --json --wait 10 --config ${dashboardConfig}")
        assert status == 1, f"the dashboard accepted the rogue agent: {out}"
        host = json.loads(out)["hosts"][0]
        assert host["connection"]["state"] == "unreachable", host["connection"]
        reason = host["connection"]["reason"]
        assert "certificate" in reason, reason
        assert host["status"] == "critical" and host["reason"] == "unreachable: " + reason, host
        assert host["snapshot"] is None, "nothing from the rogue agent was shown"
        # The rogue agent's log says it was the dashboard that refused it.
        rogue.wait_until_succeeds("journalctl -u cm-agent | grep -q \"refused this agent's certificate\"")
  '';
}
