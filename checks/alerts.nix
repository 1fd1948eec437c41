# A unit fails on an agent: its built-in alert fires at once and is mailed,
# over a route the fleet declares, to an SMTP sink (mailpit) on another node;
# `cm-agent notify test` sends through the same route; a notification secret
# reaches the agent as a systemd credential.
{ self, pkgs }:

let
  common = import ./common.nix { inherit self pkgs; };
in
{
  name = "cm-alerts";

  nodes = {
    agent1 = common.agentNode "agent1" (
      { config, ... }:
      {
        # A system service that fails at boot: a built-in alert.
        systemd.services.broken = {
          wantedBy = [ "multi-user.target" ];
          serviceConfig = {
            Type = "oneshot";
            ExecStart = "${pkgs.coreutils}/bin/false";
          };
        };
        services.cm-agent.alerts.builtin.for = "0s";
        services.cm-agent.notify.groupWait = "1s";
        # Declared once for the fleet, as a real fleet would.
        # (The sink takes mail without a login or TLS: plain SMTP on 1025, `tls=none`.)
        cm.fleet.notify.routes.ops.urls = [ "smtp://mail:1025/?to=ops@example.org&tls=none" ];
        # A secret as a deployment tool leaves it: root's, outside the store.
        environment.etc."cm-test/smtp-password" = {
          text = "not-a-real-password";
          mode = "0400";
        };
        cm.fleet.notify.credentials.smtp-password = "/etc/cm-test/smtp-password";
        environment.systemPackages = [ config.services.cm-agent.package ];
      }
    );

    mail = {
      services.mailpit.instances.sink = { };
      networking.firewall.allowedTCPPorts = [ 1025 ];
      environment.systemPackages = [ pkgs.curl ];
    };
  };

  testScript = ''
    import json
    import re

    def mails():
        """Every message the sink holds, decoded (mailpit's API)."""
        listing = json.loads(mail.succeed("curl -sf http://127.0.0.1:8025/api/v1/messages"))
        return [
            json.loads(mail.succeed(f"curl -sf http://127.0.0.1:8025/api/v1/message/{m['ID']}"))
            for m in listing["messages"]
        ]

    start_all()
    mail.wait_for_unit("mailpit-sink.service")
    mail.wait_for_open_port(1025)
    mail.wait_for_open_port(8025)
    agent1.wait_for_unit("cm-agent.service")
    agent1.wait_until_succeeds("journalctl -u cm-agent | grep -q 'serving'")

    with subtest("the notification secret reaches the agent's user as a credential"):
        agent1.succeed(
            "test \"$(runuser -u cm-agent -- cat /run/credentials/cm-agent.service/smtp-password)\" = not-a-real-password"
        )
        agent1.fail("runuser -u cm-agent -- cat /etc/cm-test/smtp-password")

    with subtest("the failed unit's alert is mailed to the fleet's route"):
        agent1.wait_until_succeeds("systemctl is-failed broken.service")

        def mailed(_):
            for m in mails():
                if "broken.service" in m["Subject"] + m["Text"]:
                    assert [t["Address"] for t in m["To"]] == ["ops@example.org"], m["To"]
                    return True
            return False

        retry(mailed)

    with subtest("cm-agent notify test sends through the same route"):
        before = len(mails())
        exec_start = agent1.succeed("systemctl show cm-agent -p ExecStart --value")
        found = re.search(r"--config (\S+)", exec_start)
        assert found, exec_start
        config = found.group(1)
        # (docs/ALERTS.md: `cm-agent notify test [--route NAME] CONFIG`)
        agent1.succeed(f"cm-agent notify test --route ops {config}")
        retry(lambda _: len(mails()) > before)
  '';
}
