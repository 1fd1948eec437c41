#!/usr/bin/env bash
# What a user pays for cm-agent, next to Debian's prometheus-node-exporter in
# the same run: CPU, memory and bytes on the wire.
#
#   bench/wire.sh [--seconds S] [--subscribers "3 100"] [--services N] [--history-off] [--no-build]
#
# For each subscriber count (default 3 and 100) one case: a fresh `cm-agent
# run` built as users get it (Cargo's `dist` profile, which the Nix package
# ships; cpu and memory every 2 s, every other collector at its
# default interval) with that many dashboards subscribed (one process,
# crates/cm-agent/examples/subscribers.rs, one QUIC endpoint per dashboard),
# and beside it a fresh node_exporter scraped every 2 s the way Prometheus
# fetches it (HTTP/1.1 keep-alive, Accept-Encoding: gzip, Prometheus' Accept
# header). After every subscriber holds its first snapshot, S seconds
# (default 120) are measured:
#   - bytes on the wire, both directions, counted by nftables counters on the
#     agent's UDP port and node_exporter's TCP port (hook output on loopback:
#     every packet once, IP and UDP/TCP headers included, link layer not;
#     QUIC ACKs, keep-alives, TCP ACKs all count);
#   - CPU seconds (utime + stime from /proc/PID/stat) over the window;
#   - RSS (/proc/PID/status VmRSS) and private dirty memory
#     (/proc/PID/smaps_rollup Private_Dirty), sampled every second: peak.
# --services N adds a case with 3 subscribers to an agent that watches N
# trivial services (`sleep infinity`) in the real systemd of
# tests/systemd/harness.sh (the agent runs outside and reads the container's
# system bus); the first run builds the harness' root filesystem (~1 min).
# Without a systemd as PID 1 here, the other cases run with systemd disabled.
# Every case keeps history (in the case's directory); --history-off adds the
# first subscriber count again with history off, for what history costs.
#
# Prints figures and asserts nothing. Needs root (nftables, the harness), python3;
# installs nftables and prometheus-node-exporter with apt-get when missing.
# Logs and raw figures stay in the work directory it names at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

seconds=120 counts="3 100" services=0 build=1 history_off=0
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --subscribers) counts=$2; shift 2 ;;
    --services) services=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --history-off) history_off=1; shift ;;
    *) sed -n '2,30p' "$0"; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "wire.sh: needs root (nftables)" >&2; exit 1; }

need=""
command -v nft >/dev/null || need="$need nftables"
command -v prometheus-node-exporter >/dev/null || need="$need prometheus-node-exporter"
if [ -n "$need" ]; then
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

target=${CARGO_TARGET_DIR:-$ROOT/target}
if [ $build = 1 ]; then
  cargo build -q --profile dist --locked -p cm-agent --bin cm-agent --example subscribers
fi
AGENT=$target/dist/cm-agent
SUBSCRIBERS=$target/dist/examples/subscribers
# A binary the linker has just written is dirty in the page cache, and its
# mapped pages count as the agent's private dirty memory until written back.
sync "$AGENT" "$SUBSCRIBERS"

WORK=$(mktemp -d /tmp/cm-wire.XXXXXX)
TABLE=cm_wire_bench
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  nft delete table inet $TABLE 2>/dev/null || true
  [ "$services" = 0 ] || tests/systemd/harness.sh stop cm-wire >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Certificates, as an operator makes them.
"$AGENT" pki init --dir "$WORK/pki" >/dev/null
"$AGENT" pki issue --ca "$WORK/pki" --name bench-host --role agent --days 30 >/dev/null
"$AGENT" pki issue --ca "$WORK/pki" --name laptop --role dashboard --days 30 >/dev/null

free_port() { python3 -c "import socket; s=socket.socket(socket.AF_INET, socket.$1); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }

# One counter per direction and port; loopback packets pass the output hook once.
count_ports() {
  nft delete table inet $TABLE 2>/dev/null || true
  nft -f - <<EOF
table inet $TABLE {
  counter agent_in {}
  counter agent_out {}
  counter ne_in {}
  counter ne_out {}
  chain out {
    type filter hook output priority 0; policy accept;
    udp dport $1 counter name agent_in
    udp sport $1 counter name agent_out
    tcp dport $2 counter name ne_in
    tcp sport $2 counter name ne_out
  }
}
EOF
}

wait_for() { # FILE PATTERN SECONDS
  local i
  for i in $(seq 1 $(($3 * 10))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "wire.sh: no '$2' in $1 after $3 s:" >&2; tail -5 "$1" >&2; return 1
}

# The systemd case: N services in a container, the agent pointed at its bus.
bus=""
if [ "$services" != 0 ]; then
  units=$WORK/units
  mkdir -p "$units"
  for i in $(seq -w 1 "$services"); do
    printf '[Unit]\nDescription=bench service %s\n\n[Service]\nExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n' \
      "$i" > "$units/bench-$i.service"
  done
  CM_HARNESS_UNITS=$units tests/systemd/harness.sh start cm-wire > "$WORK/harness.pid"
  tests/systemd/harness.sh wait cm-wire 120
  bus="unix:path=/proc/$(cat "$WORK/harness.pid")/root/run/dbus/system_bus_socket"
  running=$(tests/systemd/harness.sh exec cm-wire systemctl list-units --no-legend --state=running 'bench-*' | wc -l)
  echo "systemd harness up: $running of $services bench services running"
fi

run_case() { # NAME SUBSCRIBERS SERVICES [HISTORY: on|off]
  local name=$1 n=$2 svc=$3 hist=${4:-on} d=$WORK/$1 port ne_port agent ne subs systemd history
  mkdir -p "$d"
  port=$(free_port SOCK_DGRAM)
  ne_port=$(free_port SOCK_STREAM)
  if [ "$svc" != 0 ]; then
    systemd='enable = true
patterns = ["bench-*.service"]'
  elif [ -d /run/systemd/system ]; then
    systemd='enable = true'
  else
    systemd='enable = false'
  fi
  if [ "$hist" = on ]; then history="state_dir = \"$d/state\""; else history="enable = false"; fi
  cat > "$d/agent.toml" <<EOF
host = "bench-host"
listen = "127.0.0.1:$port"
[tls]
ca = "$WORK/pki/ca.pem"
cert = "$WORK/pki/bench-host.pem"
key = "$WORK/pki/bench-host.key"
[intervals]
cpu = 2
memory = 2
[systemd]
$systemd
[history]
$history
EOF
  count_ports "$port" "$ne_port"
  if [ "$svc" != 0 ]; then
    DBUS_SYSTEM_BUS_ADDRESS=$bus "$AGENT" run --config "$d/agent.toml" 2> "$d/agent.log" &
  else
    "$AGENT" run --config "$d/agent.toml" 2> "$d/agent.log" &
  fi
  agent=$!; pids+=("$agent")
  prometheus-node-exporter --web.listen-address="127.0.0.1:$ne_port" 2> "$d/node_exporter.log" &
  ne=$!; pids+=("$ne")
  wait_for "$d/agent.log" serving 30
  "$SUBSCRIBERS" "127.0.0.1:$port" bench-host "$WORK/pki/ca.pem" "$WORK/pki/laptop.pem" "$WORK/pki/laptop.key" "$n" \
    > "$d/subscribers.out" 2> "$d/subscribers.log" &
  subs=$!; pids+=("$subs")
  wait_for "$d/subscribers.out" '^ready' 120
  echo "case $name: $n subscribers, $svc services, measuring $seconds s" >&2
  python3 - "$seconds" "$agent" "$ne" "$ne_port" "$TABLE" > "$d/measure.json" <<'PY'
import gzip, http.client, json, os, sys, threading, time

seconds, agent, ne, ne_port, table = float(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
tick = os.sysconf("SC_CLK_TCK")

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick

def kib(pid, file, key):
    for line in open(f"/proc/{pid}/{file}"):
        if line.startswith(key):
            return int(line.split()[1])
    return 0

def counters():
    out = os.popen(f"nft -j list counters table inet {table}").read()
    return {c["counter"]["name"]: (c["counter"]["bytes"], c["counter"]["packets"])
            for c in json.loads(out)["nftables"] if "counter" in c}

# Prometheus 2.x: these headers, one kept-alive connection, a fixed 2 s schedule.
HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
              "text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "Accept-Encoding": "gzip",
    "User-Agent": "Prometheus/2.53.0",
    "X-Prometheus-Scrape-Timeout-Seconds": "2",
}
scrapes = []
def scrape(deadline):
    conn = http.client.HTTPConnection("127.0.0.1", ne_port, timeout=5)
    at = time.monotonic()
    while at < deadline:
        t = time.monotonic()
        conn.request("GET", "/metrics", headers=HEADERS)
        r = conn.getresponse()
        body = r.read()
        plain = gzip.decompress(body) if r.getheader("Content-Encoding") == "gzip" else body
        scrapes.append({"ms": (time.monotonic() - t) * 1000, "body": len(body), "plain": len(plain),
                        "encoding": r.getheader("Content-Encoding") or "identity",
                        "type": r.getheader("Content-Type")})
        at += 2
        time.sleep(max(0, at - time.monotonic()))
    conn.close()

for _ in range(100):  # node_exporter is listening
    try:
        http.client.HTTPConnection("127.0.0.1", ne_port, timeout=1).request("HEAD", "/"); break
    except OSError:
        time.sleep(0.1)

peak = {p: {"rss": 0, "dirty": 0, "series": []} for p in (agent, ne)}
def sample():
    for p in (agent, ne):
        rss, dirty = kib(p, "status", "VmRSS:"), kib(p, "smaps_rollup", "Private_Dirty:")
        peak[p]["rss"], peak[p]["dirty"] = max(peak[p]["rss"], rss), max(peak[p]["dirty"], dirty)
        peak[p]["series"].append((round(time.monotonic() - t0, 1), rss, dirty))
        peak[p]["end_rss"], peak[p]["end_dirty"] = rss, dirty

c0, cpu0, t0 = counters(), {p: cpu(p) for p in (agent, ne)}, time.monotonic()
scraper = threading.Thread(target=scrape, args=(t0 + seconds,))
scraper.start()
while time.monotonic() < t0 + seconds:
    sample()
    time.sleep(min(1, max(0, t0 + seconds - time.monotonic())))
sample()
c1, cpu1, t1 = counters(), {p: cpu(p) for p in (agent, ne)}, time.monotonic()
scraper.join()
elapsed = t1 - t0
wire = {k: {"bytes": c1[k][0] - c0[k][0], "packets": c1[k][1] - c0[k][1]} for k in c1}
print(json.dumps({
    "seconds": elapsed, "wire": wire, "scrapes": scrapes,
    "agent": {"cpu": cpu1[agent] - cpu0[agent], **peak[agent]},
    "ne": {"cpu": cpu1[ne] - cpu0[ne], **peak[ne]},
}))
PY
  kill -TERM "$subs"
  wait "$subs" || true
  kill -TERM "$agent" "$ne"
  wait "$agent" "$ne" || true
  pids=()
  echo "$name $n $svc $hist" >> "$WORK/cases"
}

for n in $counts; do
  run_case "subs$n" "$n" 0
done
[ "$history_off" = 0 ] || run_case "subs${counts%% *}-nohistory" "${counts%% *}" 0 off
[ "$services" = 0 ] || run_case "services$services" 3 "$services"
[ "$services" = 0 ] || [ "$history_off" = 0 ] || run_case "services$services-nohistory" 3 "$services" off

python3 - "$WORK" <<'PY'
import json, statistics, sys
work = sys.argv[1]
cases = []
for line in open(f"{work}/cases"):
    name, n, svc, hist = line.split()
    m = json.load(open(f"{work}/{name}/measure.json"))
    m["history"] = hist
    subs = dict(kv.split("=", 1) for kv in open(f"{work}/{name}/subscribers.out").read().split()[1:] if "=" in kv)
    cases.append((name, int(n), int(svc), m, subs))

def ratio(a, b):
    return f"{a / b:.3f}x" if b else "-"

for name, n, svc, m, subs in cases:
    s, a, ne, w = m["seconds"], m["agent"], m["ne"], m["wire"]
    agent_in, agent_out = w["agent_in"]["bytes"] / s / n, w["agent_out"]["bytes"] / s / n
    agent_pk = (w["agent_in"]["packets"] + w["agent_out"]["packets"]) / s / n
    ne_in, ne_out = w["ne_in"]["bytes"] / s, w["ne_out"]["bytes"] / s
    ne_pk = (w["ne_in"]["packets"] + w["ne_out"]["packets"]) / s
    sc = m["scrapes"]
    body = statistics.mean(x["body"] for x in sc) if sc else 0
    plain = statistics.mean(x["plain"] for x in sc) if sc else 0
    cpu_a, cpu_n = a["cpu"] / s * 60, ne["cpu"] / s * 60
    print()
    print(f"== {n} subscribers{f', {svc} services (systemd harness)' if svc else ', no services'}, history {m['history']}, 2 s interval, {s:.0f} s"
          f" ({len(sc)} scrapes, {sc[0]['encoding'] if sc else '-'}, {sc[0]['type'] if sc else '-'})")
    print(f"{'':44}{'cm-agent':>14}{'node_exporter':>16}{'ratio':>10}")
    row = lambda label, x, y, r: print(f"{label:44}{x:>14}{y:>16}{r:>10}")
    row("CPU, s per minute", f"{cpu_a:.3f}", f"{cpu_n:.3f}", ratio(cpu_a, cpu_n))
    row("RSS, MB (peak)", f"{a['rss']/1024:.1f}", f"{ne['rss']/1024:.1f}", ratio(a["rss"], ne["rss"]))
    row("  at the end", f"{a['end_rss']/1024:.1f}", f"{ne['end_rss']/1024:.1f}", ratio(a["end_rss"], ne["end_rss"]))
    row("private dirty, MB (peak)", f"{a['dirty']/1024:.2f}", f"{ne['dirty']/1024:.2f}", ratio(a["dirty"], ne["dirty"]))
    row("  at the end", f"{a['end_dirty']/1024:.2f}", f"{ne['end_dirty']/1024:.2f}", ratio(a["end_dirty"], ne["end_dirty"]))
    row("wire, B/s per subscriber / per scraper", f"{agent_in + agent_out:.0f}", f"{ne_in + ne_out:.0f}",
        ratio(agent_in + agent_out, ne_in + ne_out))
    row("  to the server, B/s", f"{agent_in:.0f}", f"{ne_in:.0f}", "")
    row("  from the server, B/s", f"{agent_out:.0f}", f"{ne_out:.0f}", "")
    row("  packets/s", f"{agent_pk:.2f}", f"{ne_pk:.2f}", "")
    frames = int(subs.get("frame_bytes", 0)) / float(subs.get("seconds", s)) / n
    states = int(subs.get("states", 0)) / float(subs.get("seconds", s)) / n
    row("payload, B/s (frames / gzip'd bodies)", f"{frames:.0f}", f"{body / 2:.0f}", "")
    print(f"  agent: {states:.2f} states/s per subscriber, age of a state on arrival p50 {subs.get('latency_p50_ms', '-')} ms"
          f" p99 {subs.get('latency_p99_ms', '-')} ms (a heartbeat's snapshot is older), {subs.get('errors', '?')} subscriber errors")
    if sc:
        ms = sorted(x["ms"] for x in sc)
        print(f"  node_exporter: body {body:.0f} B gzip'd ({plain:.0f} B plain), scrape p50 {ms[len(ms)//2]:.1f} ms"
              f" max {ms[-1]:.1f} ms")

print()
print("== summary (cm-agent, and its ratio to node_exporter in the same case)")
print(f"{'case':34}{'CPU s/min':>11}{'ratio':>9}{'RSS MB':>8}{'ratio':>8}{'dirty MB':>9}{'ratio':>8}{'B/s/sub':>9}{'ratio':>8}")
for name, n, svc, m, subs in cases:
    s, a, ne, w = m["seconds"], m["agent"], m["ne"], m["wire"]
    bps = (w["agent_in"]["bytes"] + w["agent_out"]["bytes"]) / s / n
    ne_bps = (w["ne_in"]["bytes"] + w["ne_out"]["bytes"]) / s
    label = f"{n} subs, {svc or 'no'} services, hist {m['history']}"
    print(f"{label:34}{a['cpu'] / s * 60:>11.3f}{ratio(a['cpu'], ne['cpu']):>9}"
          f"{a['rss'] / 1024:>8.1f}{ratio(a['rss'], ne['rss']):>8}{a['dirty'] / 1024:>9.2f}{ratio(a['dirty'], ne['dirty']):>8}"
          f"{bps:>9.0f}{ratio(bps, ne_bps):>8}")

plain = [c for c in cases if c[2] == 0 and c[3]["history"] == "on"]
if len(plain) >= 2:
    (_, n0, _, m0, _), (_, n1, _, m1, _) = plain[0], plain[-1]
    cpu = lambda m: m["agent"]["cpu"] / m["seconds"] * 60
    print()
    print(f"== each subscriber beyond {n0} (from {n0} to {n1}): "
          f"{(cpu(m1) - cpu(m0)) / (n1 - n0) * 1000:.1f} ms CPU per minute, "
          f"{(m1['agent']['rss'] - m0['agent']['rss']) / (n1 - n0):.0f} KiB RSS, "
          f"{(m1['agent']['dirty'] - m0['agent']['dirty']) / (n1 - n0):.0f} KiB private dirty")
print()
print(f"(work directory with logs and raw figures: {work})")
PY
