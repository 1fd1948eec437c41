#!/usr/bin/env bash
# Measures one cm-agent collection cycle next to one node_exporter scrape on
# this machine, in the same run: CPU time per sample and bytes per sample,
# with the agent built as users get it (Cargo's `dist` profile).
#
#   bench/compare-node-exporter.sh [SAMPLES]
#
# Installs Debian's prometheus-node-exporter when it is missing (needs root).
# Figures are printed, never asserted: this machine is shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
samples=${1:-300}
port=19100

if ! command -v prometheus-node-exporter >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus-node-exporter >/dev/null
fi

prometheus-node-exporter --web.listen-address=127.0.0.1:$port >/dev/null 2>&1 &
ne_pid=$!
trap 'kill $ne_pid 2>/dev/null || true' EXIT

ne=$(python3 - "$ne_pid" "$port" "$samples" <<'PY'
import sys, time, urllib.request
pid, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
url = f"http://127.0.0.1:{port}/metrics"
def ticks():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
for _ in range(100):
    try:
        urllib.request.urlopen(url, timeout=2).read(); break
    except OSError:
        time.sleep(0.05)
size = 0
t0 = ticks()
for _ in range(n):
    size = len(urllib.request.urlopen(url, timeout=5).read())
cpu_us = (ticks() - t0) / 100 * 1e6 / n
print(f"{cpu_us:.0f} {size}")
PY
)
read -r ne_cpu_us ne_bytes <<<"$ne"

ours=$(cargo bench -q --profile dist -p cm-agent --bench cycle -- "$samples" 2>/dev/null)
cm_cpu_us=$(awk '/cpu time per 2 s interval/ {print $7}' <<<"$ours")
cm_bytes=$(awk '/snapshot frame/ {print $4}' <<<"$ours")

echo "$ours"
echo
printf '%-34s %12s %12s %8s\n' "per sample ($samples samples)" "cm-agent" "node_exp." "ratio"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
printf '%-34s %10s us %10s us %7sx\n' "CPU time (user+system)" "$cm_cpu_us" "$ne_cpu_us" "$(ratio "$cm_cpu_us" "$ne_cpu_us")"
printf '%-34s %11s B %11s B %7sx\n' "bytes (CBOR frame vs /metrics)" "$cm_bytes" "$ne_bytes" "$(ratio "$cm_bytes" "$ne_bytes")"
echo "(cm-agent: one 2 s interval in steady state, every collector on its own interval; node_exporter: one HTTP scrape of its default collectors, as a scraper at 2 s would do)"
