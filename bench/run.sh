#!/usr/bin/env bash
# The gateway benchmark, on the demo deployment, in one run, three ways:
#   1. direct to the sample record system (Hope Recovery Clinic's);
#   2. through nginx, a plain reverse proxy to the same record system;
#   3. through the gateway: agency signature checked, decision, two durable
#      log entries (each after an fdatasync), forwarding, filtering.
# Then an open-loop run at half the gateway's maximum, direct and through
# the gateway, for the gateway's added p99 latency.
#
# With --tls, the same over HTTPS: the gateway serving TLS itself
# (`demo --tls`) beside nginx taking TLS in front of the same record
# system, both with the same certificate and key, both measured as above;
# then the certificate is rotated while an open-loop load runs (new files
# renamed over the gateway's), and the script fails unless every request
# was answered 200, new handshakes during the load got the old or the new
# certificate and nothing else, and a new connection afterwards gets the
# new one. The certificates come from a CA this script makes with
# openssl and keeps the key of (the demo drops its own CA's key once it
# has issued), so that the renewal is from the same CA, as a real one is.
#
# The load generator is `consentry bench`: every request carries a fresh
# signature and nonce, so it signs all requests ahead (on every core,
# before the clock starts) and then sends them over kept-alive HTTP/1.1
# connections (so over TLS a run pays one handshake per connection: it
# prints how many it opened). Requests to the record system, direct or
# through nginx, carry the gateway's own signature, as the record system
# refuses anything else.
#
# Usage: bench/run.sh [--tls] [requests] [connections]    (defaults 15000 64)
# Ports: BENCH_PORT (default 18700) to BENCH_PORT + 3, and + 10 for nginx.
# ROTATE_SECS: how long the rotation run lasts (default 15).
set -euo pipefail
cd "$(dirname "$0")/.."
TLS=0
if [ "${1:-}" = "--tls" ]; then TLS=1; shift; fi
N="${1:-15000}"
C="${2:-64}"

need() { # command package
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] && return 0
  echo "installing $2"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$2" >/dev/null
}
need nginx nginx
need curl curl
[ "$TLS" -eq 1 ] && need openssl openssl
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

cargo build --release --bin consentry >/dev/null 2>&1 || cargo build --release --bin consentry
B="${CARGO_TARGET_DIR:-$(pwd)/target}/release/consentry"
W="$(mktemp -d)"
PORT="${BENCH_PORT:-18700}"
REC="http://127.0.0.1:$((PORT + 1))/fhir"
# The demo serves /metrics on its own loopback listener, at port + 3.
METRICS="http://127.0.0.1:$((PORT + 3))/metrics"
PROXY_PORT=$((PORT + 10))
DEMO_FLAGS=()
if [ "$TLS" -eq 1 ]; then
  # The demo's certificate is for localhost and 127.0.0.1; agencies sign
  # against its public URL, https://localhost:PORT.
  GW="https://localhost:$PORT"
  PROXY="https://localhost:$PROXY_PORT"
  DEMO_FLAGS=(--tls)
else
  GW="http://127.0.0.1:$PORT"
  PROXY="http://127.0.0.1:$PROXY_PORT"
fi

"$B" demo --fresh --dir "$W/demo" --listen "127.0.0.1:$PORT" "${DEMO_FLAGS[@]}" >"$W/demo.log" 2>&1 &
DEMO=$!
CHURN=""
cleanup() {
  [ -n "$CHURN" ] && kill "$CHURN" 2>/dev/null || true
  kill -INT "$DEMO" 2>/dev/null || true
  [ -f "$W/nginx.pid" ] && "$NGINX" -c "$W/nginx.conf" -p "$W" -s stop 2>/dev/null || true
  wait "$DEMO" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -f "$W/demo/gateway.url" ] && break; sleep 0.1; done
[ -f "$W/demo/gateway.url" ] || { echo "the demo did not start:"; cat "$W/demo.log"; exit 1; }

# ---- TLS: the CA, its certificates, and what each server serves --------
PKI="$W/pki"
KEYS="$W/demo/keys"
ossl() { openssl "$@" 2>>"$W/openssl.log" || { echo "openssl $1 failed:"; cat "$W/openssl.log"; exit 1; }; }
leaf() { # name: a server certificate for localhost and 127.0.0.1 from the CA
  ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$PKI/$1.key" -out "$PKI/$1.csr" -subj "/CN=localhost"
  chmod 600 "$PKI/$1.key"
  printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "authorityKeyIdentifier=keyid" >"$PKI/$1.ext"
  ossl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 7 -extfile "$PKI/$1.ext" \
    -out "$PKI/$1.crt"
}
make_pki() {
  mkdir -p "$PKI"
  # Constrained to this machine's names, as the deployment CA is.
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$PKI/ca.key" -out "$PKI/ca.pem" -days 7 -subj "/O=Consentry bench/CN=bench CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "nameConstraints=critical,permitted;DNS:localhost,permitted;IP:127.0.0.1/255.255.255.255"
  leaf first
  leaf second
}
# As certbot and most tools do: the new pair written beside, renamed over
# (the key first: a new key with the old certificate does not load, and
# the gateway keeps serving the old pair until both are there).
install_cert() { # name
  cp "$PKI/$1.key" "$KEYS/tls.key.next"; chmod 600 "$KEYS/tls.key.next"
  cp "$PKI/$1.crt" "$KEYS/tls.crt.next"
  mv -f "$KEYS/tls.key.next" "$KEYS/tls.key"
  mv -f "$KEYS/tls.crt.next" "$KEYS/tls.crt"
}
fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2; }
# The certificate a new connection to port $1 is served, verified
# against the CA for the name localhost (nothing when it does not verify).
served() {
  openssl s_client -connect "127.0.0.1:$1" -servername localhost -verify_hostname localhost \
    -CAfile "$PKI/ca.pem" -verify_return_error </dev/null 2>/dev/null \
    | openssl x509 -noout -fingerprint -sha256 2>/dev/null | cut -d= -f2
}
wait_served() { # port fingerprint seconds
  local i
  for i in $(seq $(($3 * 10))); do
    [ "$(served "$1")" = "$2" ] && return 0
    sleep 0.1
  done
  return 1
}
if [ "$TLS" -eq 1 ]; then
  make_pki
  FIRST=$(fingerprint "$PKI/first.crt")
  SECOND=$(fingerprint "$PKI/second.crt")
  # The demo made its own certificate; serve the bench CA's instead (the
  # demo reloads on a change of its files, every 2 s).
  install_cert first
  wait_served "$PORT" "$FIRST" 15 || { echo "the gateway never served the bench certificate:"; cat "$W/demo.log"; exit 1; }
fi

if [ "$TLS" -eq 1 ]; then
  # Mozilla's intermediate profile, as the gateway's: TLS 1.2 and 1.3.
  LISTEN="listen 127.0.0.1:$PROXY_PORT ssl;
    ssl_certificate $PKI/first.crt;
    ssl_certificate_key $PKI/first.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
    ssl_prefer_server_ciphers off;"
else
  LISTEN="listen 127.0.0.1:$PROXY_PORT;"
fi
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
    $LISTEN
    location / {
      proxy_pass http://records;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
"$NGINX" -c "$W/nginx.conf" -p "$W"
if [ "$TLS" -eq 1 ]; then
  wait_served "$PROXY_PORT" "$FIRST" 5 || { echo "nginx does not serve the bench certificate"; exit 1; }
fi

CA_FLAGS=()
[ "$TLS" -eq 1 ] && CA_FLAGS=(--ca "$PKI/ca.pem")
bench() { "$B" bench --dir "$W/demo" "${CA_FLAGS[@]}" "$@"; }
metric() { curl -s "$METRICS" | awk -v m="$1" '$1 == m { print $2 }'; }
rps() { echo "$1" | sed -E 's/^[a-z]+: ([0-9]+) req\/s.*/\1/'; }
p99() { echo "$1" | sed -E 's/.*p99 ([0-9.]+) ms.*/\1/'; }
p50() { echo "$1" | sed -E 's/.*p50 ([0-9.]+) ms.*/\1/'; }

plain_variant() {
  echo "== $N requests each, $C connections, one machine (load generator included)"
  direct=$(bench --target direct --url "$REC" --requests "$N" --connections "$C")
  echo "$direct"
  proxy=$(bench --target proxy --url "$PROXY/fhir" --sign-for "$REC" --requests "$N" --connections "$C")
  echo "$proxy"
  b0=$(metric consentry_log_batches_total); e0=$(metric consentry_log_entries_total)
  gateway=$(bench --target gateway --url "$GW" --requests "$N" --connections "$C")
  echo "$gateway"
  b1=$(metric consentry_log_batches_total); e1=$(metric consentry_log_entries_total)

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
}

# Fresh connections (a handshake each) to the gateway, one every 50 ms,
# until killed: one status a line in $1.
churn() {
  while :; do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 --cacert "$PKI/ca.pem" \
      --resolve "localhost:$PORT:127.0.0.1" "$GW/v1/log/checkpoint" >>"$1" || echo "000" >>"$1"
    sleep 0.05
  done
}

# Open loop at half the gateway's maximum for ROTATE_SECS, the
# certificate replaced after a third of it.
rotation() { # gateway req/s
  local secs=${ROTATE_SECS:-15} rate=$(($1 / 2)) n t0 swapped served_at load rc codes bad
  n=$((rate * secs))
  echo "== certificate rotation under load: open loop at $rate requests/s for ${secs} s ($n requests), new files renamed over after $((secs / 3)) s"
  : >"$W/churn"
  churn "$W/churn" & CHURN=$!
  bench --target gateway --url "$GW" --requests "$n" --connections "$C" --rate "$rate" >"$W/rotation" &
  load=$!
  sleep $((secs / 3))
  t0=$(date +%s.%N)
  install_cert second
  wait_served "$PORT" "$SECOND" 15 || { echo "FAIL: the new certificate was not served within 15 s"; exit 1; }
  served_at=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  kill -0 "$load" 2>/dev/null && swapped="while the load ran" || swapped="AFTER the load ended"
  rc=0; wait "$load" || rc=$?
  kill "$CHURN" 2>/dev/null || true; wait "$CHURN" 2>/dev/null || true; CHURN=""
  cat "$W/rotation"
  codes=$(sort "$W/churn" | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')
  bad=$(grep -vc '^200$' "$W/churn" || true)
  echo "new certificate served to new connections ${served_at} s after the rename, $swapped"
  echo "fresh connections during the load (one handshake each): $codes"
  after=$(served "$PORT")
  echo "a new connection afterwards is served $after"
  echo "  the first certificate:  $FIRST"
  echo "  the second certificate: $SECOND"
  [ "$rc" -eq 0 ] || { echo "FAIL: requests failed across the rotation (exit $rc)"; exit 1; }
  [ "$bad" -eq 0 ] || { echo "FAIL: $bad fresh connections failed"; exit 1; }
  [ "$swapped" = "while the load ran" ] || { echo "FAIL: the rotation did not happen under load"; exit 1; }
  [ "$after" = "$SECOND" ] || { echo "FAIL: not the new certificate afterwards"; exit 1; }
  echo "rotation: every request answered 200, the new certificate served afterwards"
}

tls_variant() {
  echo "== over TLS: $N requests each, $C connections, one machine (load generator included)"
  proxy=$(bench --target proxy --url "$PROXY/fhir" --sign-for "$REC" --requests "$N" --connections "$C")
  echo "$proxy"
  gateway=$(bench --target gateway --url "$GW" --requests "$N" --connections "$C")
  echo "$gateway"
  echo
  echo "| path | req/s | p50 ms | p99 ms |"
  echo "| --- | --- | --- | --- |"
  for row in "nginx-tls:$proxy" "gateway-tls:$gateway"; do
    name=${row%%:*}; line=${row#*:}
    echo "| $name | $(rps "$line") | $(p50 "$line") | $(p99 "$line") |"
  done
  awk -v g="$(rps "$gateway")" -v n="$(rps "$proxy")" -v gp="$(p99 "$gateway")" -v np="$(p99 "$proxy")" \
    'BEGIN { printf "gateway-tls throughput: %.2fx nginx-tls; p99 %.2fx\n", g / n, gp / np }'
  echo
  rotation "$(rps "$gateway")"
}

if [ "$TLS" -eq 1 ]; then tls_variant; else plain_variant; fi
