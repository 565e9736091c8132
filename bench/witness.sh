#!/usr/bin/env bash
# Witnesses under load: how long after a checkpoint is published does it
# carry its k-th cosignature?
#
# A fresh demo with three witnesses enrolled (`consentry demo
# --witnesses`, policy 2 of 3) takes the audit benchmark's traffic
# (`consentry bench --target mix`) while three `consentry witness`
# processes cosign (a round every 100 ms). A monitor polls the served
# checkpoint every 10 ms: the first time it sees a size is its
# publication; the first time that size carries k cosignatures, its
# quorum. The lag is the difference, at the monitor's 10 ms resolution.
#
# Usage: bench/witness.sh [seconds of load] [k]    (defaults 30 2)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-30}"
K="${2:-2}"
cargo build --release --bin consentry >/dev/null 2>&1 || cargo build --release --bin consentry
B="$(pwd)/target/release/consentry"
W="$(mktemp -d)"
PORT=18850
GW="http://127.0.0.1:$PORT"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
"$B" demo --fresh --witnesses --dir "$W/demo" --listen "127.0.0.1:$PORT" >"$W/demo.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 600); do [ -f "$W/demo/gateway.url" ] && break; sleep 0.1; done
[ -f "$W/demo/gateway.url" ] || { echo "the demo did not start:"; cat "$W/demo.log"; exit 1; }
for i in 1 2 3; do
  "$B" witness --gateway "$GW" --name "witness-$i" --key "$W/demo/keys/witness-$i.key" \
    --vkey "$W/demo/keys/log.vkey" --state "$W/witness-$i.json" --interval-ms 100 \
    >"$W/witness-$i.log" 2>&1 &
  PIDS+=($!)
done

python3 - "$GW" "$K" "$((SECS + 5))" >"$W/lag.txt" <<'PY' &
import sys, time, urllib.request
gw, k, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
first, quorum = {}, {}
end = time.monotonic() + secs
while time.monotonic() < end:
    try:
        note = urllib.request.urlopen(gw + "/v1/log/checkpoint", timeout=2).read().decode()
    except Exception:
        time.sleep(0.01)
        continue
    now = time.monotonic()
    size = int(note.split("\n")[1])
    first.setdefault(size, now)
    cosigs = sum(1 for line in note.split("\n") if line.startswith("\u2014 witness-"))
    if cosigs >= k and size not in quorum:
        quorum[size] = now
    time.sleep(0.01)
lags = sorted((quorum[s] - first[s]) * 1000 for s in quorum)
missed = [s for s in first if s not in quorum]
def pct(p):
    return lags[min(len(lags) - 1, int(len(lags) * p))] if lags else float("nan")
print(f"checkpoints seen {len(first)}, reached {k} cosignatures {len(lags)}, superseded before that {len(missed)}")
print(f"lag to the {k}th cosignature: p50 {pct(0.5):.0f} ms, p99 {pct(0.99):.0f} ms, max {max(lags) if lags else float('nan'):.0f} ms")
PY
MON=$!
PIDS+=($MON)
sleep 2
echo "load for ${SECS} s with three witnesses cosigning (quorum $K of 3)"
end=$((SECONDS + SECS))
while [ $SECONDS -lt $end ]; do
  "$B" bench --dir "$W/demo" --target mix --url "$GW" --requests 8000 --connections 64 | sed 's/^/  /'
done
wait "$MON" || true
cat "$W/lag.txt"
for i in 1 2 3; do
  if grep -q REFUSED "$W/witness-$i.log"; then echo "witness-$i refused:"; cat "$W/witness-$i.log"; exit 1; fi
done
echo "no witness refused anything"
