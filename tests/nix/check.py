#!/usr/bin/env python3
"""Checks the report of tests/nix/eval.nix (see run.sh).

    check.py OUT_DIR CM_AGENT
"""

import json
import subprocess
import sys
from pathlib import Path

out, agent = Path(sys.argv[1]), sys.argv[2]
r = json.loads((out / "report.json").read_text())
failures = []


def check(what, ok):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string is a JSON string
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(v)


def to_toml(d, prefix=""):
    """What pkgs.formats.toml renders: scalars, then tables, then arrays of tables."""
    lines, tables, arrays = [], [], []
    for k, v in d.items():
        key = json.dumps(k) if not k.replace("_", "").replace("-", "").isalnum() else k
        if isinstance(v, dict):
            tables.append((key, v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            arrays.append((key, v))
        else:
            lines.append(f"{key} = {toml_value(v)}")
    for key, v in tables:
        lines += ["", f"[{prefix}{key}]", to_toml(v, f"{prefix}{key}.")]
    for key, items in arrays:
        for item in items:
            lines += ["", f"[[{prefix}{key}]]", to_toml(item, f"{prefix}{key}.")]
    return "\n".join(lines)


d = r["defaults"]
s, svc = d["settings"], d["service"]["serviceConfig"]
check("default listen is [::]:6130", s["listen"] == "[::]:6130")
check("host defaults to networking.hostName", s["host"] == "srv01")
check("intervals default to 2/2/10/5/1800/10 s", s["intervals"] == {"cpu": 2, "memory": 2, "storage": 10, "gpu": 5, "smart": 1800, "services": 10})
check("history is on by default, with the agent's retention", s["history"] == {
    "enable": True, "retention_raw": "48h", "retention_minutes": "30d", "retention_hours": "2y",
    "max_bytes": 268435456, "forecast_min_span": "7d"})
check("the history lives in the agent's own state directory, owner-only",
      svc["StateDirectory"] == "cm-agent" and svc["StateDirectoryMode"] == "0700" and "state_dir" not in s["history"])
check("no firewall hole unless asked", d["firewall"] == [])
check("no failed assertions by default", d["assertions"] == [])
for key, want in [("User", "cm-agent"), ("Group", "cm-agent"), ("ProtectSystem", "strict"), ("NoNewPrivileges", True),
                  ("StateDirectory", "cm-agent"), ("PrivateTmp", True), ("ProtectKernelModules", True), ("RestrictNamespaces", True),
                  ("MemoryDenyWriteExecute", True), ("PrivateDevices", True)]:
    check(f"agent unit has {key}={want}", svc.get(key) == want)
check("no dynamic user: dbus-daemon drops them, and their StateDirectory hides /var/lib/private", "DynamicUser" not in svc)
check("the static user and group cm-agent exist", d["users"]["users"]["cm-agent"]["isSystemUser"] is True
      and d["users"]["users"]["cm-agent"]["group"] == "cm-agent" and "cm-agent" in d["users"]["groups"])
check("the network-facing agent holds no capability at all", svc["CapabilityBoundingSet"] == "" and svc["AmbientCapabilities"] == "")
check("the agent's unit reloads certificates with SIGHUP", svc["ExecReload"].endswith("/bin/kill -HUP $MAINPID"))
check("unit runs cm-agent with the checked config", svc["ExecStart"].endswith("/bin/cm-agent run --config /nix/store/00000000000000000000000000000000-cm-agent.toml"))
check("secrets reach the agent as credentials", svc["LoadCredential"] == [
    "ca.pem:/run/secrets/cm/ca.pem", "cert.pem:/run/secrets/cm/srv01.pem", "key.pem:/run/secrets/cm/srv01.key"])
c = d["collector"]["serviceConfig"]
check("the privileged collector has no network", c["PrivateNetwork"] is True and c["IPAddressDeny"] == "any"
      and c["RestrictAddressFamilies"] == ["AF_UNIX"])
check("SMART on: the collector has CAP_SYS_RAWIO, CAP_SYS_ADMIN, CAP_DAC_READ_SEARCH, the disk group",
      {"CAP_SYS_RAWIO", "CAP_SYS_ADMIN", "CAP_DAC_READ_SEARCH"} == set(c["CapabilityBoundingSet"]) == set(c["AmbientCapabilities"])
      and c["SupplementaryGroups"] == ["disk"] and c["PrivateDevices"] is False)
check("the collector may read every disk kind the storage collector reports",
      {"block-sd r", "block-blkext r", "block-virtblk r", "block-mmc r", "block-xvd r", "char-nvme r"} == set(c["DeviceAllow"]))
check("the collector runs as its own user, in the agent's group, results in its RuntimeDirectory",
      c["User"] == "cm-agent-collector" and c["Group"] == "cm-agent" and c["RuntimeDirectory"] == "cm-agent-collector"
      and c["RuntimeDirectoryMode"] == "0750" and c["ExecStart"].endswith("cm-agent collect-privileged --config /nix/store/00000000000000000000000000000000-cm-agent.toml"))
check("the agent reads the collector's results", d["finalSettings"]["privileged"] == {"results": "/run/cm-agent-collector/results.cbor"}
      and "cm-agent-collector.service" in d["service"]["after"])
check("every option of the modules has a description", r["undocumented"] == [])
if r["undocumented"]:
    print("  undocumented:", r["undocumented"])

n = r["noSmart"]
check("SMART off: the collector only reads directories, private /dev", n["collector"]["serviceConfig"]["CapabilityBoundingSet"] == ["CAP_DAC_READ_SEARCH"]
      and n["collector"]["serviceConfig"]["PrivateDevices"] is True and n["collector"]["path"] == [])
check("openFirewall opens the configured port", n["firewall"] == [7000] and n["settings"]["listen"] == "[::]:7000")
check("a listen address on another port than the firewall opens is an assertion",
      any("must use services.cm-agent.port" in a for a in r["listenElsewhere"]["assertions"]))
o = r["systemdOff"]
check("systemd off: restic jobs are not added, nothing fails, no collector without work",
      o["settings"]["backups"] == [] and o["assertions"] == [] and o["collector"] is None)
v = r["nvidiaHost"]
check("NVIDIA in use: the driver's nvidia-smi, its devices",
      v["finalSettings"]["collectors"]["nvidia"] is True
      and v["finalSettings"]["collectors"]["nvidia_smi"] == "/nix/store/00000000000000000000000000000000-nvidia-x11-bin/bin/nvidia-smi"
      and v["service"]["serviceConfig"]["PrivateDevices"] is False
      and "char-nvidia-frontend" in v["service"]["serviceConfig"]["DeviceAllow"])

w = r["withJobs"]["settings"]
check("restic and borg jobs become backup entries", w["backups"] == [
    {"kind": "restic", "name": "b2", "unit": "restic-backups-b2.service"},
    {"kind": "borg", "name": "lab", "unit": "borgbackup-job-lab.service"}])
check("watch + the system's enabled boot services become units, once each",
      w["systemd"]["units"] == ["vaultwarden.service", "gitea.service", "graphical.service"])
check("extraPaths reach the agent", w["systemd"]["extra_paths"] == {"gitea.service": ["/srv/gitea"]})

check("a key in the Nix store fails an assertion", any("in the Nix store" in a for a in r["keyInStore"]["assertions"]))
port_err = (out / "badPort.err").read_text()
check("a bad port gives the module's type error", "services.cm-agent.port" in port_err and "16 bit unsigned integer" in port_err)
interval_err = (out / "badInterval.err").read_text()
check("a bad interval gives the module's type error", "intervals.cpu" in interval_err and "between 0.1 and 86400" in interval_err)
threshold_err = (out / "badThreshold.err").read_text()
check("warning above critical is the module's error", "thresholds.drive_wear_percent" in threshold_err)
span_err = (out / "badSpan.err").read_text()
check("a retention that is no span is the module's type error", "history.retention_raw" in span_err and "forever" in span_err)
check("thresholds default to the agent's", s["thresholds"]["drive_wear_percent"] == [70, 90] and s["thresholds"]["memory_percent"] == [80, 90])

f = r["fleet"]
check("the fleet enables the agent on its hosts with secrets outside the store",
      f["agentEnabled"] and f["agentTls"]["key"] == "/run/secrets/cm/cmbox.key")
check("the dashboard lists the fleet's agents only", [h["name"] for h in f["dashboard"]["hosts"]] == ["cmbox", "srv01"])
check("the dashboard's file goes to /etc", f["etc"] == ["cm-dashboard/dashboard.toml"])

m = r["withMetrics"]
check("/metrics: off by default", "metrics" not in d["finalSettings"] and d["firewall"] == [])
check("/metrics enabled with TLS on all addresses, its TCP port opened",
      m["finalSettings"]["metrics"] == {"listen": "[::]:9130", "tls": True} and m["tcp"] == [9130] and m["assertions"] == [])
check("plain /metrics off loopback is an assertion",
      any("plain HTTP is served on loopback only" in a for a in r["plainMetricsElsewhere"]["assertions"]))


# Alerts and notifications: the agent's [alerts] and [notify] tables exactly.
check("no alert or notify table unless configured: the agent's defaults hold",
      "alerts" not in d["finalSettings"] and "notify" not in d["finalSettings"])
a = r["withAlerts"]
smtp = "smtp://cm@mail.example.org:587/?to=ops@example.org&password_file=/run/credentials/cm-agent.service/smtp-password"
check("alert options become [alerts] exactly: spans as strings, unset keys left out, rules by name, a disabled rule dropped",
      a["finalSettings"]["alerts"] == {
          "builtin": {"for": "0s", "keep_firing_for": "1m", "route": "pager"},
          "flap_window": "5m", "flap_changes": 4,
          "rules": [
              {"name": "backups-stale", "backup": "restic-*", "no_success_for": "26h", "severity": "critical", "route": "pager"},
              {"name": "disks-fill", "series": "fs.*.used_percent", "full_within": "7d"},
              {"name": "low-memory", "series": "memory.available_bytes", "warn": 1073741824, "below": True, "match": "all", "notify": False},
              {"name": "no-gpu", "series": "gpu.*.temperature_celsius", "absent_for": "10m"},
              {"name": "scratch-and-memory", "condition": "scratch-full and not low-memory", "severity": "critical"},
              {"name": "scratch-full", "series": "fs./srv/scratch.used_percent", "warn": 50, "crit": 90.5, "clear": 40, "below": False,
               "for": "30s", "keep_firing_for": "1m", "match": "any", "route": "ops", "notify": True},
          ]})
check("notify options become [notify] exactly, routes as [[notify.routes]] with their URLs",
      a["finalSettings"]["notify"] == {
          "default_route": "ops", "group_wait": "10s",
          "routes": [
              {"name": "ops", "urls": [smtp, "ntfy://ntfy.example.org/cm-alerts"]},
              {"name": "pager", "urls": ["ntfy://ntfy.example.org/cm-pager?token_file=/run/credentials/cm-agent.service/ntfy-token"],
               "repeat": "0s", "send_resolved": False},
          ]})
check("a valid alert configuration fails no assertion", a["assertions"] == [])
ac = a["service"]["serviceConfig"]
check("notify credentials become LoadCredential after the TLS files",
      ac["LoadCredential"] == ["ca.pem:/run/secrets/cm/ca.pem", "cert.pem:/run/secrets/cm/srv01.pem", "key.pem:/run/secrets/cm/srv01.key",
                               "ntfy-token:/run/secrets/ntfy", "smtp-password:/run/secrets/smtp"])
check("with routes the agent can still reach SMTP and HTTP servers (IPv4, IPv6, no address filter, no private network)",
      {"AF_INET", "AF_INET6"} <= set(ac["RestrictAddressFamilies"]) and "IPAddressDeny" not in ac and "PrivateNetwork" not in ac
      and ac["CapabilityBoundingSet"] == "")
check("a rule's route that is not declared is an assertion naming the rule, the route and the routes",
      r["unknownRoute"]["assertions"] == [
          'services.cm-agent.alerts.rules.scratch-full.route = "pager" is no route of services.cm-agent.notify.routes (declared: ops); cm.fleet.notify.routes are declared there too.'])
check("a builtin route with no routes at all is an assertion",
      r["noRoutes"]["assertions"] == [
          'services.cm-agent.alerts.builtin.route = "ops" is no route of services.cm-agent.notify.routes (none is declared); cm.fleet.notify.routes are declared there too.'])
check("two routes and no defaultRoute is an assertion (attribute sets have no first)",
      len(r["twoRoutesNoDefault"]["assertions"]) == 1 and "set services.cm-agent.notify.defaultRoute" in r["twoRoutesNoDefault"]["assertions"][0])
si = r["secretInUrl"]["assertions"]
check("a password in a URL's user info or a token= parameter is an assertion that does not print it; password_file= is fine",
      len(si) == 2 and "URL 1 has a password" in si[0] and "URL 2 has a password" in si[1] and not any("hunter2" in m or "abc" in m for m in si))
bc = r["badCredentials"]["assertions"]
check("credentials: the agent's own names, a slash, a store path, a relative path are assertions",
      len(bc) == 4 and all(any(f"notify.credentials.{n} =" in m for m in bc) for n in ("key.pem", "a/b", "in-store", "relative")))
fa = r["fleetAlerts"]
check("an agent of the fleet takes the fleet's rules and routes, merged with its own by name; its own values win, enable = false drops one",
      fa["finalSettings"]["alerts"] == {
          "builtin": {"for": "2m"},
          "rules": [
              {"name": "disks-fill", "series": "fs.*.used_percent", "full_within": "7d"},
              {"name": "hot-cpu", "series": "cpu.temperature_celsius", "warn": 85, "crit": 100},
              {"name": "scratch-full", "series": "fs./srv/scratch.used_percent", "crit": 90, "route": "srv01-owner"},
          ]}
      and fa["finalSettings"]["notify"] == {
          "default_route": "ops",
          "routes": [{"name": "ops", "urls": [smtp]}, {"name": "srv01-owner", "urls": ["ntfy://ntfy.example.org/srv01"]}]}
      and fa["assertions"] == [])
check("the fleet's credentials reach the agent's unit",
      "smtp-password:/run/secrets/cm/smtp-password" in fa["service"]["serviceConfig"]["LoadCredential"])
rule_span_err = (out / "badRuleSpan.err").read_text()
check("a rule's span that is no span is the module's type error", "alerts.rules.scratch-full.for" in rule_span_err and "soon" in rule_span_err)
match_err = (out / "badMatch.err").read_text()
check("a rule's match other than any/all is the module's type error", "alerts.rules.scratch-full.match" in match_err and "most" in match_err)

# The generated settings, as TOML, must satisfy the agent itself.
# An agent from before alerts rejects [alerts] or [notify] (deny_unknown_fields):
# then what it cannot read is left out, and the output says so.
def agent_reads(table):
    probe = out / f"probe-{table}.toml"
    probe.write_text(to_toml(d["finalSettings"]) + f"\n\n[{table}]\n")
    return subprocess.run([agent, "check-config", "--no-files", str(probe)], capture_output=True).returncode == 0


def without_routes(settings):
    """The settings with [notify] and every route left out."""
    s = json.loads(json.dumps(settings))
    s.pop("notify", None)
    s["alerts"].get("builtin", {}).pop("route", None)
    for rule in s["alerts"].get("rules", []):
        rule.pop("route", None)
    return s


toml_cases = [("defaults", d["finalSettings"]), ("withJobs", w), ("noSmart", n["settings"]), ("nvidiaHost", v["finalSettings"]), ("withMetrics", m["finalSettings"])]
alert_cases = [("withAlerts", a["finalSettings"]), ("fleetAlerts", fa["finalSettings"])]
if agent_reads("alerts") and agent_reads("notify"):
    toml_cases += alert_cases
elif agent_reads("alerts"):
    print(f"SKIP [notify] and routes in the withAlerts and fleetAlerts TOML: {agent} predates [notify]")
    toml_cases += [(f"{name} without routes", without_routes(s)) for name, s in alert_cases]
else:
    print(f"SKIP cm-agent check-config of the withAlerts and fleetAlerts TOML: {agent} predates [alerts] and [notify]")
for name, settings in toml_cases:
    path = out / f"{name.replace(' ', '-')}.toml"
    path.write_text(to_toml(settings) + "\n")
    res = subprocess.run([agent, "check-config", "--no-files", str(path)], capture_output=True, text=True)
    check(f"cm-agent check-config --no-files accepts the {name} TOML", res.returncode == 0)
    if res.returncode:
        print(res.stderr, path.read_text(), sep="\n")
# As the module's build runs it: the secrets are not there, and must not be looked at.
agent_module = (Path(__file__).resolve().parents[2] / "modules/agent.nix").read_text()
check("the module's build-time check leaves the secrets alone (--no-files)",
      'check-config --no-files ${configFile}' in agent_module and 'check-config ${configFile}' not in agent_module)
dashboard_module = (Path(__file__).resolve().parents[2] / "modules/dashboard.nix").read_text()
check("the dashboard module's build-time check leaves the secrets alone",
      'CM_DASHBOARD_SKIP_FILE_CHECKS=1 ${lib.getExe\' cfg.package "cm-dashboard"} --check-config' in dashboard_module)
res = subprocess.run([agent, "check-config", str(out / "defaults.toml")], capture_output=True, text=True)
check("without --no-files a missing certificate is an error naming its key",
      res.returncode != 0 and "tls.ca = /run/credentials/cm-agent.service/ca.pem: no such file" in res.stderr)
check("the agent reads its certificates from the service's credentials",
      d["finalSettings"]["tls"] == {k: f"/run/credentials/cm-agent.service/{k}.pem" for k in ("ca", "cert", "key")})
(out / "agent.toml").write_text(to_toml(r["harness"]["finalSettings"]) + "\n")

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
