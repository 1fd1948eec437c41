#!/usr/bin/env bash
# Runs the two units the NixOS module generates, as they are, in the real
# systemd of tests/systemd/harness.sh (root): cm-agent as the static user
# cm-agent with no capability (its secrets by group instead of as
# credentials, for a limit of this container's systemd, below), and
# cm-agent-collector (SMART, services' disk usage) with its capabilities and
# no network. The program and its configuration sit at the Nix store paths
# the units name; the users are made as NixOS makes system users. Checks that
# the agent reads units over dbus-daemon, that the collector measures a
# static and a dynamic user's StateDirectory, that the agent's effective
# capabilities are zero, and that a dashboard sees it all; prints the units'
# `systemd-analyze security` exposure.
#
#   tests/nix/harness.sh OUT_DIR CM_AGENT CM_DASHBOARD     (called by run.sh --harness)
set -euo pipefail
out=$1 agent=$(readlink -f "$2") dashboard=$(readlink -f "$3")
here=$(cd "$(dirname "$0")" && pwd)
harness=$here/../systemd/harness.sh
name=cmnix$$
files=$out/root
pki=$out/pki

"$agent" pki init --dir "$pki" >/dev/null
"$agent" pki issue --ca "$pki" --name srv01 --role agent >/dev/null
"$agent" pki issue --ca "$pki" --name laptop --role dashboard >/dev/null

rootfs=${CM_HARNESS_DIR:-/var/tmp/cm-harness}/rootfs
"$harness" rootfs

# The store paths the module's units name (stub derivations of tests/nix/eval.nix).
store=/nix/store/00000000000000000000000000000000
install -D -m 0755 "$agent" "$files$store-cm-agent/bin/cm-agent"
install -d "$files$store-coreutils/bin" "$files$store-smartmontools/bin"
ln -sf /bin/kill "$files$store-coreutils/bin/kill"
[ -x "$rootfs/usr/sbin/smartctl" ] && ln -sf /usr/sbin/smartctl "$files$store-smartmontools/bin/smartctl"
install -m 0644 "$out/agent.toml" "$files$store-cm-agent.toml"

# The secrets, root-only, as agenix or sops-nix leave them.
install -d -m 0700 "$files/var/lib/cm-secrets"
for f in ca.pem srv01.pem srv01.key; do install -m 0600 "$pki/$f" "$files/var/lib/cm-secrets/$f"; done

# Users and groups as NixOS makes them (users.users.*.isSystemUser), and the
# units as NixOS writes them from systemd.services.*.
install -d "$files/etc/systemd/system/multi-user.target.wants"
cp "$rootfs/etc/group" "$files/etc/group"
cp "$rootfs/etc/passwd" "$files/etc/passwd"
python3 - "$out/report.json" "$files" "$store" <<'PY'
import json, sys
report, files, store = json.load(open(sys.argv[1]))["harness"], sys.argv[2], sys.argv[3]
users = report["users"]
groups = {name: 980 - i for i, name in enumerate(sorted(users["groups"]))}
with open(f"{files}/etc/group", "a") as g:
    for name, gid in groups.items():
        g.write(f"{name}:x:{gid}:\n")
with open(f"{files}/etc/passwd", "a") as p:
    for i, (name, u) in enumerate(sorted(users["users"].items())):
        assert u["isSystemUser"], name
        p.write(f"{name}:x:{990 - i}:{groups[u['group']]}:{u['description']}:/var/empty:/usr/sbin/nologin\n")

def unit(name, service):
    lines = ["[Unit]", f"Description={service['description']}"]
    for key in ("wants", "after"):
        for v in service.get(key, []):
            lines.append(f"{key.capitalize()}={v}")
    lines += ["", "[Service]"]
    path = [f"{p}/bin" for p in service.get("path", [])] + ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
    lines.append(f"Environment=PATH={':'.join(path)}")
    for key, value in service["serviceConfig"].items():
        for v in value if isinstance(value, list) else [value]:
            lines.append(f"{key}={'yes' if v is True else 'no' if v is False else v}")
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    open(f"{files}/etc/systemd/system/{name}", "w").write("\n".join(lines))

unit("cm-agent.service", report["service"])
unit("cm-agent-collector.service", report["collector"])
PY
# One substitution, for what this container's systemd 252 cannot do and
# NixOS does: it cannot mount the private credentials file system here and
# binds a root-only (0700, no ACL) /run/credentials/UNIT into the unit, so no
# non-root unit can read its credentials; a bare
# `systemd-run -p User=cm-agent -p LoadCredential=...` fails the same way,
# and a bind of readable files over that directory is itself covered by
# systemd's. So a drop-in drops LoadCredential= and the configuration's three
# TLS paths point at the same files, readable by the unit's group. The rest
# is the module's units and configuration as generated.
install -d -m 0750 "$files/var/lib/cm-credentials"
for f in ca:ca.pem cert:srv01.pem key:srv01.key; do
  install -m 0640 "$pki/${f#*:}" "$files/var/lib/cm-credentials/${f%%:*}.pem"
done
sed -i 's|/run/credentials/cm-agent.service/|/var/lib/cm-credentials/|' "$files$store-cm-agent.toml"
install -d "$files/etc/systemd/system/cm-agent.service.d"
cat > "$files/etc/systemd/system/cm-agent.service.d/harness-credentials.conf" <<'UNIT'
[Service]
LoadCredential=
ExecStartPre=+/bin/chgrp -R cm-agent /var/lib/cm-credentials
UNIT
for u in cm-agent cm-agent-collector cm-dynamic; do
  ln -sf "/etc/systemd/system/$u.service" "$files/etc/systemd/system/multi-user.target.wants/$u.service"
done
# A dynamic-user service with 8 MiB in its StateDirectory (/var/lib/private/cm-dynamic).
cat > "$files/etc/systemd/system/cm-dynamic.service" <<'UNIT'
[Unit]
Description=Dynamic-user test service: 8 MiB in its StateDirectory

[Service]
DynamicUser=yes
StateDirectory=cm-dynamic
ExecStartPre=/bin/sh -c 'head -c 8388608 /dev/zero > /var/lib/cm-dynamic/data.bin'
ExecStart=/bin/sleep infinity
UNIT

pid=$(CM_HARNESS_FILES=$files "$harness" start "$name")
trap '[ -n "${CM_KEEP:-}" ] || "$harness" stop "$name" >/dev/null 2>&1 || true' EXIT
"$harness" wait "$name" 60 || true
inside() { "$harness" exec "$name" "$@"; }
fail() {
  echo "FAIL: $*" >&2
  inside journalctl -u cm-agent -u cm-agent-collector --no-pager | tail -30 >&2
  exit 1
}
# Waits up to 20 s for a command inside the container to succeed.
until_ok() {
  for _ in $(seq 1 200); do inside sh -c "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# cm-healthy writes 20 MiB before it starts: measure its directory after that.
until_ok "systemctl is-active cm-healthy && systemctl is-active cm-dynamic" || fail "the test services did not start"
inside systemctl restart cm-agent-collector cm-agent
until_ok "journalctl -u cm-agent --no-pager | grep -q 'serving srv01'" || fail "the agent did not start under the module's unit"
echo "ok   the agent starts under the module's unit, as the static user cm-agent"
until_ok "test -s /var/lib/cm-agent/history.sqlite" || fail "the agent keeps no history in its StateDirectory"
[ "$(inside stat -c '%a %U' /var/lib/cm-agent | tr -d '\r')" = "700 cm-agent" ] ||
  fail "the state directory is not the agent's own, owner-only: $(inside stat -c '%a %U' /var/lib/cm-agent)"
inside journalctl -u cm-agent --no-pager | grep -q 'history: keeping /var/lib/cm-agent/history.sqlite' ||
  fail "the agent does not say where it keeps history"
echo "ok   history is kept in the unit's StateDirectory (/var/lib/cm-agent, 0700, cm-agent's own)"
until_ok "test -s /run/cm-agent-collector/results.cbor" || fail "the privileged collector wrote no results"
echo "ok   the privileged collector writes its results under its RuntimeDirectory"

status() { inside cat "/proc/$(inside systemctl show "$1" -p MainPID --value)/status"; }
agent_status=$(status cm-agent)
[ "$(awk '/^Uid:/ {print $2}' <<<"$agent_status")" = "$(inside id -u cm-agent)" ] || fail "the agent does not run as cm-agent"
[ "$(awk '/^CapEff:/ {print $2}' <<<"$agent_status")" = 0000000000000000 ] || fail "the agent has capabilities: $(grep Cap <<<"$agent_status")"
[ "$(awk '/^CapBnd:/ {print $2}' <<<"$agent_status")" = 0000000000000000 ] || fail "the agent's bounding set is not empty"
echo "ok   the network-facing agent has no capability at all (CapEff and CapBnd 0)"
collector_caps=$(awk '/^CapEff:/ {print $2}' <<<"$(status cm-agent-collector)")
echo "ok   the collector's effective capabilities: $collector_caps (DAC_READ_SEARCH, SYS_RAWIO, SYS_ADMIN)"
links=$(inside sh -c 'awk "NR > 2 { print \$1 }" /proc/$(systemctl show cm-agent-collector -p MainPID --value)/net/dev')
[ "$(echo $links)" = "lo:" ] || fail "the collector sees network interfaces: $links"
echo "ok   the collector has no network but loopback"

cat > "$out/dashboard.toml" <<TOML
[tls]
ca = "$pki/ca.pem"
cert = "$pki/laptop.pem"
key = "$pki/laptop.key"

[[hosts]]
name = "srv01"
address = "127.0.0.1"
TOML
# The dashboard joins the container's network namespace only. The collector
# measures directories on its own schedule: wait for both sizes.
for attempt in $(seq 1 20); do
  state=$(nsenter -t "$pid" -n "$dashboard" --once --json --wait 10 --config "$out/dashboard.toml") || fail "the dashboard could not subscribe: $state"
  python3 - "$state" <<'PY' && break
import json, sys
snap = json.loads(sys.argv[1])["hosts"][0]["snapshot"]
services = {s["name"]: s for s in snap["services"] or []}
sys.exit(0 if all(services.get(n, {}).get("disk_bytes") for n in ("cm-healthy.service", "cm-dynamic.service")) else 1)
PY
  sleep 1
done
python3 - "$state" <<'PY' || fail "the snapshot is not what the hardened agent should see"
import json, sys
state = json.loads(sys.argv[1])
assert state["version"] == 1, "docs/STATE.md's schema"
host = state["hosts"][0]
assert host["connection"]["state"] == "connected", host["connection"]
snap = host["snapshot"]
services = {s["name"]: s for s in snap["services"] or []}
healthy, dynamic = services["cm-healthy.service"], services["cm-dynamic.service"]
assert healthy["active_state"] == "active", healthy
for s, want in ((healthy, 20 << 20), (dynamic, 8 << 20)):
    size = s["disk_bytes"] or 0
    assert abs(size - want) < (1 << 20), f"{s['name']}: StateDirectory measured as {size}, errors {s['disk_errors']}"
flapping = services["cm-flapping.service"]
assert flapping["restarts"] > 0 and flapping["status"] in ("warning", "ok"), flapping
privileged = [c for c in snap["collectors"] if c["name"] == "privileged"]
assert privileged, "the agent reports on the privileged collector"
print(f"ok   the dashboard sees srv01 over dbus-daemon: {len(services)} services, "
      f"cm-healthy {healthy['disk_bytes'] >> 20} MiB (static user), cm-dynamic {dynamic['disk_bytes'] >> 20} MiB (dynamic user)")
print(f"ok   the privileged collector's report: {privileged[0]['error'] or 'fresh results'}")
PY

for u in cm-agent cm-agent-collector; do
  score=$(inside systemd-analyze security "$u.service" --no-pager 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \(.*\)/\1/p')
  echo "ok   systemd-analyze security $u.service: ${score:-not available}"
done
