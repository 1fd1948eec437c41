#!/usr/bin/env bash
# Runs the agent under the systemd unit the NixOS module generates, in the real
# systemd of tests/systemd/harness.sh (root): the agent starts as a dynamic
# user with the module's hardening and credentials, reads units and the disk
# usage of their directories, and serves a dashboard.
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

# The container's root: the agent program, its secrets (root-only, as agenix
# leaves them), the module's configuration and the module's unit.
install -D -m 0755 "$agent" "$files/opt/cm/cm-agent"
# Two substitutions, for what this container cannot do and NixOS does:
# - its systemd cannot hand credentials to a dynamic user (/run/credentials/UNIT
#   stays root-only 0700, also for a bare DynamicUser= + LoadCredential= unit),
#   so the secrets are given by group and the config's TLS paths point at them;
# - its dbus-daemon drops connections from dynamic users (busctl too), so the
#   unit runs as a static unprivileged user instead of DynamicUser=.
# Everything else is the module's own unit and config.
rootfs=${CM_HARNESS_DIR:-/var/tmp/cm-harness}/rootfs
"$harness" rootfs
install -d "$files/etc"
cp "$rootfs/etc/group" "$files/etc/group"
cp "$rootfs/etc/passwd" "$files/etc/passwd"
echo "cmsecrets:x:990:" >> "$files/etc/group"
echo "cmagent:x:991:" >> "$files/etc/group"
echo "cmagent:x:991:991:cm-agent:/:/usr/sbin/nologin" >> "$files/etc/passwd"
install -d -m 0750 -g 990 "$files/etc/cm-secrets"
for f in ca.pem srv01.pem srv01.key; do install -m 0640 -g 990 "$pki/$f" "$files/etc/cm-secrets/$f"; done
install -d "$files/etc/cm-agent"
sed -e 's|/run/credentials/cm-agent.service/ca.pem|/etc/cm-secrets/ca.pem|' \
    -e 's|/run/credentials/cm-agent.service/cert.pem|/etc/cm-secrets/srv01.pem|' \
    -e 's|/run/credentials/cm-agent.service/key.pem|/etc/cm-secrets/srv01.key|' \
    "$out/agent.toml" > "$files/etc/cm-agent/agent.toml"
mkdir -p "$files/etc/systemd/system"
python3 - "$out/report.json" "$files/etc/systemd/system/cm-agent.service" <<'PY'
import json, sys
service = json.load(open(sys.argv[1]))["harness"]["service"]
sc = dict(service["serviceConfig"])
# The Nix store paths become the container's: the program and the secrets.
sc["ExecStart"] = "/opt/cm/cm-agent run --config /etc/cm-agent/agent.toml"
assert sc.pop("LoadCredential"), "the module's unit loads credentials"
sc["SupplementaryGroups"] = sc["SupplementaryGroups"] + ["cmsecrets"]
assert sc.pop("DynamicUser") is True, "the module's unit uses a dynamic user"
sc["User"] = "cmagent"
lines = ["[Unit]", f"Description={service['description']}", "", "[Service]"]
for key, value in sc.items():
    for v in value if isinstance(value, list) else [value]:
        lines.append(f"{key}={'yes' if v is True else 'no' if v is False else v}")
lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
open(sys.argv[2], "w").write("\n".join(lines))
PY
mkdir -p "$files/etc/systemd/system/multi-user.target.wants"
ln -s /etc/systemd/system/cm-agent.service "$files/etc/systemd/system/multi-user.target.wants/cm-agent.service"
# The module asks for a listen address on every interface; the container has
# only loopback, which that includes.

pid=$(CM_HARNESS_FILES=$files "$harness" start "$name")
trap '[ -n "${CM_KEEP:-}" ] || "$harness" stop "$name" >/dev/null 2>&1 || true' EXIT
"$harness" wait "$name" 60 || true
fail() { echo "FAIL: $*" >&2; "$harness" exec "$name" journalctl -u cm-agent --no-pager | tail -20 >&2; exit 1; }

# cm-healthy writes 20 MiB before it starts; measure its directory after that.
for _ in $(seq 1 100); do
  [ "$("$harness" exec "$name" systemctl is-active cm-healthy)" = active ] && break
  sleep 0.1
done
"$harness" exec "$name" systemctl restart cm-agent
for _ in $(seq 1 100); do
  "$harness" exec "$name" journalctl -u cm-agent --no-pager 2>/dev/null | grep -q "serving srv01" && break
  sleep 0.1
done
"$harness" exec "$name" journalctl -u cm-agent --no-pager | grep -q "serving srv01" || fail "the agent did not start under the module's unit"
echo "ok   the agent starts under the module's unit"

main=$("$harness" exec "$name" systemctl show cm-agent -p MainPID --value)
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/root/proc/$main/status" 2>/dev/null || "$harness" exec "$name" awk '/^Uid:/ {print $2}' "/proc/$main/status")
[ -n "$uid" ] && [ "$uid" != 0 ] || fail "the agent runs as uid '$uid', not an unprivileged user"
echo "ok   it runs as unprivileged uid $uid"
caps=$("$harness" exec "$name" awk '/^CapEff:/ {print $2}' "/proc/$main/status")
echo "ok   effective capabilities $caps (bounded by the unit)"

cat > "$out/dashboard.toml" <<TOML
[tls]
ca = "$pki/ca.pem"
cert = "$pki/laptop.pem"
key = "$pki/laptop.key"

[[hosts]]
name = "srv01"
address = "127.0.0.1"
TOML
# The dashboard joins the container's network namespace only.
state=$(nsenter -t "$pid" -n "$dashboard" --once --json --wait 10 --config "$out/dashboard.toml") || fail "the dashboard could not subscribe: $state"
python3 - "$state" <<'PY' || fail "the snapshot is not what the hardened agent should see"
import json, sys
host = json.loads(sys.argv[1])["hosts"][0]
assert host["connection"]["state"] == "connected", host["connection"]
snap = host["snapshot"]
services = {s["name"]: s for s in snap["services"] or []}
healthy = services["cm-healthy.service"]
assert healthy["active_state"] == "active", healthy
size = healthy["disk_bytes"]
assert abs(size - (20 << 20)) < (1 << 20), f"StateDirectory measured as {size}"
flapping = services["cm-flapping.service"]
assert flapping["restarts"] > 0 and flapping["status"] in ("warning", "ok"), flapping
print(f"ok   the dashboard sees srv01: {len(services)} services, cm-healthy {healthy['sub_state']}, {size >> 20} MiB in its StateDirectory")
smart = [c for c in snap["collectors"] if c["name"] == "smart"]
print(f"ok   SMART in the container: {smart[0]['error'] or 'read' if smart else 'off'}")
PY
