#!/usr/bin/env bash
# What one Prometheus scrape of cm-agent's /metrics costs, next to one of
# Debian's prometheus-node-exporter in the same run: CPU time of the scraped
# process per scrape, and bytes per scrape (gzip'd body as Prometheus fetches
# it, and plain).
#
#   bench/scrape.sh [--scrapes N] [--no-build]
#
# Both are scraped N times (default 120), 0.25 s apart (the agent answers at
# most a burst of 5 and then 5 a second on a connection), over one kept-alive
# connection with Prometheus' headers; CPU is utime + stime from /proc/PID/stat
# around the scrapes, minus what the same process spent over as long idle
# (measured first, over 10 s), so the agent's own collection is not counted.
# Prints figures and asserts nothing. Installs prometheus-node-exporter with
# apt-get when missing (root).
set -euo pipefail
cd "$(dirname "$0")/.."
scrapes=120 build=1
while [ $# -gt 0 ]; do
  case $1 in
    --scrapes) scrapes=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
  esac
done
command -v prometheus-node-exporter >/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-node-exporter >/dev/null
target=${CARGO_TARGET_DIR:-$PWD/target}
[ $build = 0 ] || cargo build -q --profile dist --locked -p cm-agent --bin cm-agent
AGENT=$target/dist/cm-agent
WORK=$(mktemp -d /tmp/cm-scrape.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
"$AGENT" pki init --dir "$WORK/pki" >/dev/null
"$AGENT" pki issue --ca "$WORK/pki" --name bench-host --role agent --days 30 >/dev/null
quic=$(port) metrics=$(port) ne=$(port)
systemd='enable = false'
[ -d /run/systemd/system ] && systemd='enable = true'
cat > "$WORK/agent.toml" <<TOML
host = "bench-host"
listen = "127.0.0.1:$quic"
[tls]
ca = "$WORK/pki/ca.pem"
cert = "$WORK/pki/bench-host.pem"
key = "$WORK/pki/bench-host.key"
[systemd]
$systemd
[history]
state_dir = "$WORK/state"
[metrics]
listen = "127.0.0.1:$metrics"
TOML
"$AGENT" run --config "$WORK/agent.toml" 2> "$WORK/agent.log" & pids+=($!)
agent=$!
prometheus-node-exporter --web.listen-address="127.0.0.1:$ne" 2> "$WORK/ne.log" & pids+=($!)
nep=$!
python3 - "$scrapes" "$agent" "$metrics" "$nep" "$ne" <<'PY'
import gzip, http.client, os, sys, time
n = int(sys.argv[1])
targets = {"cm-agent": (int(sys.argv[2]), int(sys.argv[3])), "node_exporter": (int(sys.argv[4]), int(sys.argv[5]))}
tick = os.sysconf("SC_CLK_TCK")
H = {"Accept": "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
     "Accept-Encoding": "gzip", "User-Agent": "Prometheus/2.53.0"}
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
def connect(port):
    for _ in range(200):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5); c.request("GET", "/metrics", headers=H)
            r = c.getresponse(); r.read()
            if r.status == 200:
                return c
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"no /metrics on {port}")
print(f"{'':30}{'cm-agent':>12}{'node_exporter':>16}{'ratio':>8}")
rows = {}
for name, (pid, port) in targets.items():
    c = connect(port)
    c0, t0 = cpu(pid), time.monotonic(); time.sleep(10); idle = (cpu(pid) - c0) / (time.monotonic() - t0)
    body = plain = 0
    c0, t0 = cpu(pid), time.monotonic()
    for i in range(n):
        time.sleep(max(0, t0 + i * 0.25 - time.monotonic()))
        c.request("GET", "/metrics", headers=H); r = c.getresponse(); b = r.read()
        if r.status != 200:
            raise SystemExit(f"{name}: HTTP {r.status}")
        body += len(b); plain += len(gzip.decompress(b) if r.getheader("Content-Encoding") == "gzip" else b)
    wall = time.monotonic() - t0
    used = cpu(pid) - c0 - idle * wall
    rows[name] = (max(used, 0) / n * 1000, body / n, plain / n)
for i, label in enumerate(["CPU per scrape, ms", "bytes per scrape (gzip)", "bytes per scrape (plain)"]):
    a, b = rows["cm-agent"][i], rows["node_exporter"][i]
    print(f"{label:30}{a:>12.2f}{b:>16.2f}{a / b if b else 0:>7.3f}x")
PY
