# An agent's machine shuts down: the dashboard reports it unreachable, then back.
{ self, pkgs }:

let
  common = import ./common.nix { inherit self pkgs; };
in
{
  name = "cm-host-down";

  nodes = {
    agent1 = common.agentNode "agent1" { };
    dashboard = common.dashboardNode // {
      # Only agent1 takes part in this test.
      cm.fleet.hosts = {
        inherit (common.fleet) agent1;
      };
    };
  };

  testScript = ''
    import json

    start_all()
    agent1.wait_for_unit("cm-agent.service")
    dashboard.wait_for_unit("multi-user.target")
    dashboard.wait_until_succeeds("cm-dashboard --once --json --wait 20")

    with subtest("unreachable while down"):
        agent1.shutdown()
        status, out = dashboard.execute("cm-dashboard --once --json --wait 5")
        assert status != 0
        host = json.loads(out)["hosts"][0]
        assert host["connection"]["state"] == "unreachable", host
        # docs/STATE.md: an unreachable host is critical, and says why.
        assert host["status"] == "critical", host["status"]
        assert host["connection"]["reason"], host["connection"]
        assert host["reason"].startswith("unreachable: "), host["reason"]

    with subtest("back after it boots"):
        agent1.start()
        agent1.wait_for_unit("cm-agent.service")
        out = dashboard.wait_until_succeeds("cm-dashboard --once --json --wait 10")
        host = json.loads(out)["hosts"][0]
        assert host["connection"]["state"] == "connected", host["connection"]
        assert host["connection"]["reason"] is None, host["connection"]
  '';
}
