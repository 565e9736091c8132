#!/usr/bin/env bash
# The auditor's benchmark: verify and replay a log of a million entries
# made by the gateway's own load generator, against the physical floor.
#
# 1. A fresh demo deployment takes `consentry bench --target mix` (allowed
#    requests with their releases, denials for want of consent and for the
#    wrong purpose, emergencies under break-glass with their notices)
#    until its log holds ENTRIES entries; near the end the demo consent is
#    revoked, so later requests under it are denied.
# 2. The deployment stops; `consentry audit export` writes the bundle.
# 3. `consentry audit verify --state S --floor --json`: signatures, tree,
#    replay of every decision and release, timed by phase; then, in the
#    same run, the bare batch Ed25519 verification of the same signatures
#    on the same threads (the floor).
# 4. The demo restarts, about 1,000 more entries arrive, a new export is
#    verified with the same state file: the incremental resume.
#
# Usage: bench/audit.sh [entries]    (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
ENTRIES="${1:-1000000}"
cargo build --release --bin consentry >/dev/null 2>&1 || cargo build --release --bin consentry
B="$(pwd)/target/release/consentry"
W="$(mktemp -d)"
PORT=18800
GW="http://127.0.0.1:$PORT"
DEMO=""
start_demo() {
  rm -f "$W/demo/gateway.url"
  "$B" demo "$@" --dir "$W/demo" --listen "127.0.0.1:$PORT" >>"$W/demo.log" 2>&1 &
  DEMO=$!
  for _ in $(seq 600); do [ -f "$W/demo/gateway.url" ] && break; sleep 0.1; done
  [ -f "$W/demo/gateway.url" ] || { echo "the demo did not start:"; cat "$W/demo.log"; exit 1; }
}
stop_demo() {
  kill -INT "$DEMO" 2>/dev/null || true
  wait "$DEMO" 2>/dev/null || true
  DEMO=""
}
cleanup() {
  [ -n "$DEMO" ] && stop_demo
  rm -rf "$W"
}
trap cleanup EXIT
size() { curl -sf "$GW/v1/log/checkpoint" | sed -n 2p; }

start_demo --fresh
echo "filling the log to $ENTRIES entries with the mix (allows, denies, emergencies, releases)"
# About 1.75 entries per request: an allow logs a decision and a release,
# a denial the decision only, an emergency also a notice.
fill() {
  while [ "$(size)" -lt "$1" ]; do
    left=$(( ($1 - $(size)) * 4 / 7 + 100 ))
    n=$(( left < 50000 ? left : 50000 ))
    "$B" bench --dir "$W/demo" --target mix --url "$GW" --requests "$n" --connections 64 | sed 's/^/  /'
    sleep 1.2 # the next checkpoint
  done
}
fill $(( ENTRIES * 9 / 10 ))
"$B" revoke --dir "$W/demo" --participant p-0001 --consent c-demo-0001 | sed 's/^/  /'
fill "$ENTRIES"
stop_demo

echo "exporting"
/usr/bin/time -f "  export: %e s, %M KiB max resident" "$B" audit export --dir "$W/demo" -o "$W/bundle" | sed 's/^/  /'
du -sh "$W/bundle" | sed 's/^/  bundle size: /'

echo "verifying (with the floor, in the same run)"
"$B" audit verify "$W/bundle" --state "$W/auditor.json" --floor --json >"$W/verify.json"
python3 - "$W/verify.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
s, f = v["summary"], v["floor"]
n = s["to"] - s["from"]
print(f"  entries {n:,}, signatures {s['signatures']:,}, decisions replayed {s['decisions_replayed']:,}, releases checked {s['releases_checked']:,}, findings {s['findings']}")
print(f"  verify and replay: {s['total']:.1f} s = {n / s['total']:,.0f} entries/s on {v['threads']} threads")
# The replay runs on one thread while the workers check signatures and
# hash leaves: the shares are of the time each thread spent in each part
# (on 2 cores, with 3 threads, they include waiting for a core).
parts = ["signature_time", "tree_time", "replay_time", "read"]
cpu = sum(s[k] for k in parts)
for k in parts:
    print(f"    {k:15} {s[k]:6.1f} s of thread time  {100 * s[k] / cpu:4.1f} %")
print(f"  floor (bare batch Ed25519 of the same {f['signatures']:,} signatures, {v['threads']} threads): {f['seconds']:.1f} s = {f['signatures'] / f['seconds']:,.0f}/s")
print(f"  verify / floor: {s['total'] / f['seconds']:.2f}x (target 1.5x); under 60 s: {'yes' if s['total'] < 60 else 'no'}")
PY

echo "incremental: about 1,000 more entries, a new export, the same state file"
start_demo
"$B" bench --dir "$W/demo" --target mix --url "$GW" --requests 800 --connections 16 | sed 's/^/  /'
stop_demo
"$B" audit export --dir "$W/demo" -o "$W/bundle2" >/dev/null
"$B" audit verify "$W/bundle2" --state "$W/auditor.json" --json >"$W/verify2.json"
python3 - "$W/verify2.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
s = v["summary"]
print(f"  resumed at {s['from']:,}: {s['to'] - s['from']:,} new entries verified in {s['total'] * 1000:.0f} ms (target under 1 s), findings {s['findings']}")
PY
