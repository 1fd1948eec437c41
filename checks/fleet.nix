# Two agents and a dashboard: both hosts seen, a failing unit on one reported critical.
{ self, pkgs }:

let
  common = import ./common.nix { inherit self pkgs; };
in
{
  name = "cm-fleet";

  # The modules add this flake's overlay to nixpkgs.
  node.pkgsReadOnly = false;

  nodes = {
    agent1 = common.agentNode "agent1" { };
    agent2 = common.agentNode "agent2" {
      # A system service that fails at boot: the agent watches the system's own services.
      systemd.services.broken = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          Type = "oneshot";
          ExecStart = "${pkgs.coreutils}/bin/false";
        };
      };
    };
    dashboard = common.dashboardNode;
  };

  testScript = ''
    import json

    start_all()
    for agent in (agent1, agent2):
        agent.wait_for_unit("cm-agent.service")
        agent.wait_until_succeeds("journalctl -u cm-agent | grep -q 'serving'")
    dashboard.wait_for_unit("multi-user.target")

    with subtest("both hosts are seen"):
        state = json.loads(dashboard.wait_until_succeeds("cm-dashboard --once --json --wait 20"))
        hosts = {h["name"]: h for h in state["hosts"]}
        for name in ("agent1", "agent2"):
            assert hosts[name]["connection"]["state"] == "connected", hosts[name]
            assert hosts[name]["snapshot"]["host"] == name

    with subtest("the failing unit on agent2 is critical"):
        services = {s["name"]: s for s in hosts["agent2"]["snapshot"]["services"]}
        assert services["broken.service"]["status"] == "critical", services["broken.service"]
        assert "broken.service" not in {s["name"] for s in hosts["agent1"]["snapshot"]["services"]}

    with subtest("the agent runs under its hardening"):
        agent1.succeed("systemctl show cm-agent -p DynamicUser | grep -q yes")
        agent1.succeed("systemctl show cm-agent -p ProtectSystem | grep -q strict")
  '';
}
