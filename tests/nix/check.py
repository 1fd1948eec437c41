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
check("intervals default to 2/2/10/5/1800 s", s["intervals"] == {"cpu": 2, "memory": 2, "storage": 10, "gpu": 5, "smart": 1800})
check("no firewall hole unless asked", d["firewall"] == [])
check("no failed assertions by default", d["assertions"] == [])
for key, want in [("DynamicUser", True), ("ProtectSystem", "strict"), ("NoNewPrivileges", True), ("StateDirectory", "cm-agent"),
                  ("PrivateTmp", True), ("ProtectKernelModules", True), ("RestrictNamespaces", True), ("MemoryDenyWriteExecute", True)]:
    check(f"unit has {key}={want}", svc.get(key) == want)
check("SMART on: CAP_SYS_RAWIO and CAP_SYS_ADMIN, disk group, block devices",
      {"CAP_SYS_RAWIO", "CAP_SYS_ADMIN", "CAP_DAC_READ_SEARCH"} == set(svc["CapabilityBoundingSet"]) == set(svc["AmbientCapabilities"])
      and svc["SupplementaryGroups"] == ["disk"] and svc["PrivateDevices"] is False)
check("unit runs cm-agent with the checked config", svc["ExecStart"].endswith("/bin/cm-agent run --config /nix/store/00000000000000000000000000000000-cm-agent.toml"))
check("secrets reach the dynamic user as credentials", svc["LoadCredential"] == [
    "ca.pem:/run/secrets/cm/ca.pem", "cert.pem:/run/secrets/cm/srv01.pem", "key.pem:/run/secrets/cm/srv01.key"])

n = r["noSmart"]
check("SMART off: only CAP_DAC_READ_SEARCH, private /dev", n["service"]["serviceConfig"]["CapabilityBoundingSet"] == ["CAP_DAC_READ_SEARCH"]
      and n["service"]["serviceConfig"]["PrivateDevices"] is True and n["service"]["path"] == [])
check("openFirewall opens the configured port", n["firewall"] == [7000] and n["settings"]["listen"] == "[::]:7000")

w = r["withJobs"]["settings"]
check("restic and borg jobs become backup entries", w["backups"] == [
    {"kind": "restic", "name": "b2", "unit": "restic-backups-b2.service"},
    {"kind": "borg", "name": "lab", "unit": "borgbackup-job-lab.service"}])
check("watch + the system's own boot services become units", w["systemd"]["units"] == ["vaultwarden.service", "gitea.service"])
check("extraPaths reach the agent", w["systemd"]["extra_paths"] == {"gitea.service": ["/srv/gitea"]})

check("a key in the Nix store fails an assertion", any("in the Nix store" in a for a in r["keyInStore"]["assertions"]))
port_err = (out / "badPort.err").read_text()
check("a bad port gives the module's type error", "services.cm-agent.port" in port_err and "16 bit unsigned integer" in port_err)
interval_err = (out / "badInterval.err").read_text()
check("a bad interval gives the module's type error", "intervals.cpu" in interval_err and "between 0.1 and 86400" in interval_err)
threshold_err = (out / "badThreshold.err").read_text()
check("warning above critical is the module's error", "thresholds.drive_wear_percent" in threshold_err)
check("thresholds default to the agent's", s["thresholds"]["drive_wear_percent"] == [70, 90] and s["thresholds"]["memory_percent"] == [80, 90])

f = r["fleet"]
check("the fleet enables the agent on its hosts with secrets outside the store",
      f["agentEnabled"] and f["agentTls"]["key"] == "/run/secrets/cm/cmbox.key")
check("the dashboard lists the fleet's agents only", [h["name"] for h in f["dashboard"]["hosts"]] == ["cmbox", "srv01"])
check("the dashboard's file goes to /etc", f["etc"] == ["cm-dashboard/dashboard.toml"])

# The generated settings, as TOML, must satisfy the agent itself.
for name, settings in [("defaults", s), ("withJobs", w), ("noSmart", n["settings"])]:
    path = out / f"{name}.toml"
    path.write_text(to_toml(settings) + "\n")
    res = subprocess.run([agent, "check-config", str(path)], capture_output=True, text=True)
    check(f"cm-agent check-config accepts the {name} TOML", res.returncode == 0)
    if res.returncode:
        print(res.stderr, path.read_text(), sep="\n")
check("the agent reads its certificates from the service's credentials",
      d["finalSettings"]["tls"] == {k: f"/run/credentials/cm-agent.service/{k}.pem" for k in ("ca", "cert", "key")})
(out / "agent.toml").write_text(to_toml(r["harness"]["finalSettings"]) + "\n")

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
