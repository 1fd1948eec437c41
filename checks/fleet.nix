# Two agents and a dashboard: both hosts seen; a failing unit and a failing
# backup job on one reported critical, also on its /metrics; history kept and
# exported; a dynamic-user service's disk usage
# measured by the privileged collector; the NixOS state after a switch
# without a reboot.
{ self, pkgs }:

let
  common = import ./common.nix { inherit self pkgs; };
in
{
  name = "cm-fleet";

  nodes = {
    agent1 = common.agentNode "agent1" { };
    agent2 = common.agentNode "agent2" ({ config, ... }: {
      # A system service that fails at boot: the agent watches the system's own services.
      systemd.services.broken = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          Type = "oneshot";
          ExecStart = "${pkgs.coreutils}/bin/false";
        };
      };
      # A backup job that fails.
      systemd.services.nightly-backup.serviceConfig = {
        Type = "oneshot";
        ExecStart = "${pkgs.coreutils}/bin/false";
      };
      services.cm-agent.settings.backups = [
        {
          name = "nightly";
          unit = "nightly-backup.service";
        }
      ];
      # A dynamic-user service with 5 MiB in its StateDirectory.
      systemd.services.vault = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          DynamicUser = true;
          StateDirectory = "vault";
          ExecStartPre = "${pkgs.coreutils}/bin/dd if=/dev/zero of=/var/lib/vault/data bs=1M count=5";
          ExecStart = "${pkgs.coreutils}/bin/sleep infinity";
        };
      };
      # /metrics on loopback, scraped below with curl.
      services.cm-agent.metrics.enable = true;
      environment.systemPackages = [
        pkgs.curl
        config.services.cm-agent.package
      ];
      # The next configuration: another kernel, switched to without a reboot.
      specialisation.next.configuration.boot.kernelPackages = pkgs.linuxPackages_latest;
    });
    dashboard = common.dashboardNode;
  };

  testScript = ''
    import json

    start_all()
    for agent in (agent1, agent2):
        agent.wait_for_unit("cm-agent.service")
        agent.wait_until_succeeds("journalctl -u cm-agent | grep -q 'serving'")
    dashboard.wait_for_unit("multi-user.target")

    # The state's schema: docs/STATE.md.
    with subtest("both hosts are seen"):
        state = json.loads(dashboard.wait_until_succeeds("cm-dashboard --once --json --wait 20"))
        assert state["version"] == 1 and state["mode"] == "fleet", state
        hosts = {h["name"]: h for h in state["hosts"]}
        for name in ("agent1", "agent2"):
            assert hosts[name]["connection"]["state"] == "connected", hosts[name]
            assert hosts[name]["snapshot"]["host"] == name
            assert not hosts[name]["stale"], hosts[name]

    with subtest("the failing unit on agent2 is critical"):
        services = {s["name"]: s for s in hosts["agent2"]["snapshot"]["services"]}
        assert services["broken.service"]["status"] == "critical", services["broken.service"]
        # The host's own verdict says so too, with a reason to read.
        assert hosts["agent2"]["status"] == "critical", hosts["agent2"]["status"]
        assert hosts["agent2"]["reason"], hosts["agent2"]
        assert "broken.service" not in {s["name"] for s in hosts["agent1"]["snapshot"]["services"]}

    with subtest("the failing backup job is critical"):
        agent2.fail("systemctl start nightly-backup.service")
        def backup_failed(_):
            state = json.loads(dashboard.succeed("cm-dashboard --once --json --wait 20"))
            agent2_snap = {h["name"]: h for h in state["hosts"]}["agent2"]["snapshot"]
            jobs = {b["name"]: b for b in agent2_snap["backups"] or []}
            return jobs.get("nightly", {}).get("status") == "critical"
        retry(backup_failed)

    with subtest("the privileged collector measures a dynamic user's StateDirectory"):
        agent2.wait_for_unit("vault.service")
        def vault_measured(_):
            state = json.loads(dashboard.succeed("cm-dashboard --once --json --wait 20"))
            services = {s["name"]: s for s in {h["name"]: h for h in state["hosts"]}["agent2"]["snapshot"]["services"]}
            size = services.get("vault.service", {}).get("disk_bytes") or 0
            return abs(size - (5 << 20)) < (1 << 20)
        retry(vault_measured)

    with subtest("the agent runs as its static user with no capability, the collector without network"):
        agent1.succeed("systemctl show cm-agent -p User | grep -qx User=cm-agent")
        agent1.succeed("systemctl show cm-agent -p ProtectSystem | grep -q strict")
        pid = agent1.succeed("systemctl show cm-agent -p MainPID --value").strip()
        agent1.succeed(f"grep -q '^CapEff:[[:space:]]*0000000000000000$' /proc/{pid}/status")
        agent1.succeed("systemctl show cm-agent-collector -p PrivateNetwork | grep -qx PrivateNetwork=yes")

    with subtest("history is kept in the state directory and exported; /metrics says the broken unit is critical"):
        agent2.wait_until_succeeds("test -s /var/lib/cm-agent/history.sqlite")
        agent2.succeed("test \"$(stat -c %a /var/lib/cm-agent)\" = 700")
        agent2.wait_until_succeeds(
            "cm-agent export --state-dir /var/lib/cm-agent memory.total_bytes --since 10m --format csv | grep -q '^memory.total_bytes,'"
        )
        agent2.wait_until_succeeds(
            "curl -sf http://127.0.0.1:9130/metrics | grep -qx 'cm_status{item=\"service.broken.service\"} 2'"
        )

    with subtest("a switch to a new kernel without a reboot shows as reboot needed"):
        agent2.succeed("/run/current-system/specialisation/next/bin/switch-to-configuration test")
        def reboot_needed(_):
            state = json.loads(dashboard.succeed("cm-dashboard --once --json --wait 20"))
            nixos = {h["name"]: h for h in state["hosts"]}["agent2"]["snapshot"].get("nixos") or {}
            return nixos.get("reboot_needed") is True
        retry(reboot_needed)
  '';
}
