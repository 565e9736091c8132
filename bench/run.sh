#!/usr/bin/env bash
# The gateway benchmark, on the demo deployment, in one run, three ways:
#   1. direct to the sample record system (Hope Recovery Clinic's);
#   2. through nginx, a plain reverse proxy to the same record system;
#   3. through the gateway: agency signature checked, decision, two durable
#      log entries (each after an fdatasync), forwarding, filtering.
# Then an open-loop run at half the gateway's maximum, direct and through
# the gateway, for the gateway's added p99 latency.
#
# The load generator is `consentry bench`: every request carries a fresh
# signature and nonce, so it signs all requests ahead (on every core,
# before the clock starts) and then sends them. Requests to the record
# system, direct or through nginx, carry the gateway's own signature, as
# the record system refuses anything else.
#
# Usage: bench/run.sh [requests] [connections]    (defaults 15000 64)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-15000}"
C="${2:-64}"

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "installing nginx for the proxy comparison"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

cargo build --release --bin consentry >/dev/null 2>&1 || cargo build --release --bin consentry
B="$(pwd)/target/release/consentry"
W="$(mktemp -d)"
PORT=18700
GW="http://127.0.0.1:$PORT"
REC="http://127.0.0.1:$((PORT + 1))/fhir"
# The demo serves /metrics on its own loopback listener, at port + 3.
METRICS="http://127.0.0.1:$((PORT + 3))/metrics"
PROXY_PORT=18710

"$B" demo --fresh --dir "$W/demo" --listen "127.0.0.1:$PORT" >"$W/demo.log" 2>&1 &
DEMO=$!
cleanup() {
  kill -INT "$DEMO" 2>/dev/null || true
  [ -f "$W/nginx.pid" ] && "$NGINX" -c "$W/nginx.conf" -p "$W" -s stop 2>/dev/null || true
  wait "$DEMO" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -f "$W/demo/gateway.url" ] && break; sleep 0.1; done
[ -f "$W/demo/gateway.url" ] || { echo "the demo did not start:"; cat "$W/demo.log"; exit 1; }

cat >"$W/nginx.conf" <<CONF
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $W/body;
  proxy_temp_path $W/proxy;
  fastcgi_temp_path $W/fastcgi;
  uwsgi_temp_path $W/uwsgi;
  scgi_temp_path $W/scgi;
  upstream records { server 127.0.0.1:$((PORT + 1)); keepalive 128; }
  server {
    listen 127.0.0.1:$PROXY_PORT;
    location / {
      proxy_pass http://records;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
"$NGINX" -c "$W/nginx.conf" -p "$W"

bench() { "$B" bench --dir "$W/demo" "$@"; }
field() { sed -E "s/.*$1 ([0-9.]+).*/\1/"; }
metric() { curl -s "$METRICS" | awk -v m="$1" '$1 == m { print $2 }'; }

echo "== $N requests each, $C connections, one machine (load generator included)"
direct=$(bench --target direct --url "$REC" --requests "$N" --connections "$C")
echo "$direct"
proxy=$(bench --target proxy --url "http://127.0.0.1:$PROXY_PORT/fhir" --sign-for "$REC" --requests "$N" --connections "$C")
echo "$proxy"
b0=$(metric consentry_log_batches_total); e0=$(metric consentry_log_entries_total)
gateway=$(bench --target gateway --url "$GW" --requests "$N" --connections "$C")
echo "$gateway"
b1=$(metric consentry_log_batches_total); e1=$(metric consentry_log_entries_total)

rps() { echo "$1" | sed -E 's/^[a-z]+: ([0-9]+) req\/s.*/\1/'; }
p99() { echo "$1" | sed -E 's/.*p99 ([0-9.]+) ms.*/\1/'; }
p50() { echo "$1" | sed -E 's/.*p50 ([0-9.]+) ms.*/\1/'; }
gw_rps=$(rps "$gateway")
half=$((gw_rps / 2))
n_half=$((half * 5))
echo "== open loop at half the gateway's maximum: $half requests/s, $n_half requests"
direct_half=$(bench --target direct --url "$REC" --requests "$n_half" --connections "$C" --rate "$half")
echo "$direct_half"
gateway_half=$(bench --target gateway --url "$GW" --requests "$n_half" --connections "$C" --rate "$half")
echo "$gateway_half"

echo
echo "| path | req/s | p50 ms | p99 ms |"
echo "| --- | --- | --- | --- |"
for row in "direct:$direct" "nginx:$proxy" "gateway:$gateway"; do
  name=${row%%:*}; line=${row#*:}
  echo "| $name | $(rps "$line") | $(p50 "$line") | $(p99 "$line") |"
done
awk -v g="$(rps "$gateway")" -v n="$(rps "$proxy")" -v d="$(rps "$direct")" \
  'BEGIN { printf "gateway throughput: %.2fx nginx, %.2fx direct\n", g / n, g / d }'
awk -v b="$((b1 - b0))" -v e="$((e1 - e0))" \
  'BEGIN { printf "mean append batch at max load: %.1f entries (%d entries in %d batches)\n", e / b, e, b }'
awk -v g="$(p99 "$gateway_half")" -v d="$(p99 "$direct_half")" -v r="$half" \
  'BEGIN { printf "added p99 at %d req/s (half the maximum): %.2f ms (gateway %.2f ms, direct %.2f ms)\n", r, g - d, g, d }'
