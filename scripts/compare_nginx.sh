#!/usr/bin/env bash
# compare_nginx.sh — wrk against wharf's file server and nginx (sendfile on),
# side by side on loopback, alternating runs, medians and ratios, and each
# server's CPU time per request.
#
#   scripts/compare_nginx.sh [--tls] [--handshakes] [ROUNDS] [SECONDS]
#                                                   (default 3 rounds of 10 s)
#
# Needs nginx and wrk (apt-get install -y nginx wrk). Serves two files, 1 KiB
# and 1 MiB, from a temporary directory. wharf runs as
# `file_server --mode reuseport:2` (and `--mode single`), nginx
# with 2 workers, sendfile, tcp_nopush, keep-alive and no access log.
# Prints a markdown table, with each server's ratio to nginx as shipped and,
# when it ran, to nginx with its open-file cache.
#
# SERVERS picks and orders the servers of each round (default
# "wharf-reuseport2 nginx-2workers wharf-single"); among them:
#   wharf-reuseport2, wharf-single   the file server (its open-file cache on,
#                                    the default 1000 files per thread)
#   wharf-reuseport2-nocache         the same with --open-file-cache 0
#   wharf-reuseport2-nocoalesce      the same with --coalesce-writes 0 (the
#                                    transport's write coalescing off)
#   nginx-2workers                   nginx as shipped (open_file_cache off)
#   nginx-ofc                        nginx with open_file_cache max=10000
#                                    inactive=60s; open_file_cache_valid 60s
#                                    (as NGINX_OPEN_FILE_CACHE=1
#                                    shared/tools/nginx-peer.sh)
# NGINX_OPEN_FILE_CACHE=1 adds nginx-ofc after nginx-2workers.
#
# --tls: both serve HTTPS with the same certificate (ECDSA P-256, made here
# with openssl), nginx with TLS 1.3 and a shared session cache (as
# shared/tools/nginx-peer.sh), wharf with `--tls-cert/--tls-key`.
# --handshakes: every request on a new connection (`Connection: close`),
# 1 KiB only: with --tls, that measures full handshakes per second.
set -euo pipefail
cd "$(dirname "$0")/.."

tls=""
close=""
while [[ ${1:-} == --* ]]; do
    case $1 in
    --tls) tls=1 ;;
    --handshakes) close=1 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
rounds=${1:-3}
secs=${2:-10}
scheme=http
[[ -n $tls ]] && scheme=https
files=(1k.bin 1m.bin)
[[ -n $close ]] && files=(1k.bin)
wrk_headers=()
[[ -n $close ]] && wrk_headers=(-H "Connection: close")
wharf_port=18080
nginx_port=18081
work=$(mktemp -d /tmp/wharf-vs-nginx.XXXXXX)
cleanup() {
    if [[ -n "${wharf_pid:-}" ]]; then kill "$wharf_pid" 2>/dev/null || true; fi
    if [[ -n "${nginx_pid:-}" ]]; then kill "$nginx_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

command -v nginx >/dev/null && command -v wrk >/dev/null || {
    echo "needs nginx and wrk: apt-get install -y nginx wrk" >&2
    exit 1
}

mkdir -p "$work/www" "$work/nginx"/{client_body,proxy,fastcgi,uwsgi,scgi}
head -c 1024 /dev/urandom > "$work/www/1k.bin"
head -c 1048576 /dev/urandom > "$work/www/1m.bin"

cargo build --release --example file_server >/dev/null 2>&1

wharf_tls=()
nginx_tls_listen=""
nginx_tls=""
if [[ -n $tls ]]; then
    command -v openssl >/dev/null || { echo "--tls needs openssl" >&2; exit 1; }
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
        -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 2>/dev/null
    wharf_tls=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
    nginx_tls_listen=" ssl"
    nginx_tls="ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem; ssl_protocols TLSv1.3; ssl_session_cache shared:SSL:10m;"
fi

user_line=""
[[ $(id -u) == 0 ]] && user_line="user $(id -un) $(id -gn);"
# nginx_conf [EXTRA]: the configuration, with EXTRA in its server block.
nginx_conf() {
cat <<EOF
$user_line
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 8192; use epoll; }
http {
    access_log off;
    server_tokens off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/client_body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        listen 127.0.0.1:$nginx_port backlog=4096$nginx_tls_listen;
        $nginx_tls
        root $work/www;
        ${1:-}
        location / { }
    }
}
EOF
}
nginx_conf > "$work/nginx/nginx.conf"
nginx_conf "open_file_cache max=10000 inactive=60s; open_file_cache_valid 60s; open_file_cache_errors on;" \
    > "$work/nginx/nginx-ofc.conf"

# wait_port, ticks_of
source scripts/measure_lib.sh

start_wharf() {
    ./target/release/examples/file_server --root "$work/www" --addr "127.0.0.1:$wharf_port" \
        "${wharf_tls[@]}" "$@" >/dev/null &
    wharf_pid=$!
    wait_port "$wharf_port"
    server_pids=("$wharf_pid")
}

# start_nginx [CONF]: nginx with $work/nginx/CONF (nginx.conf by default).
start_nginx() {
    nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/${1:-nginx.conf}" -g 'daemon off;' &
    nginx_pid=$!
    wait_port "$nginx_port"
    mapfile -t server_pids < <(pgrep -P "$nginx_pid")
    server_pids+=("$nginx_pid")
}

stop_servers() {
    if [[ -n "${wharf_pid:-}" ]]; then
        kill -INT "$wharf_pid" 2>/dev/null || true
        wait "$wharf_pid" 2>/dev/null || true
        wharf_pid=""
    fi
    if [[ -n "${nginx_pid:-}" ]]; then
        kill -TERM "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
        nginx_pid=""
    fi
}

# run NAME PORT FILE: one wrk run; appends "name file req/s MB/s cpu_us/req".
run() {
    local name=$1 port=$2 file=$3 out before after reqs rps mbs
    before=$(ticks_of "${server_pids[@]}")
    out=$(wrk -t2 -c50 -d"${secs}s" --latency "${wrk_headers[@]}" "$scheme://127.0.0.1:$port/$file")
    after=$(ticks_of "${server_pids[@]}")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    mbs=$(awk '/Transfer\/sec/ {v=$2; if (v ~ /GB/) {sub("GB","",v); v*=1024} else if (v ~ /KB/) {sub("KB","",v); v/=1024} else {sub("MB","",v)}; print v}' <<<"$out")
    local hz
    hz=$(getconf CLK_TCK)
    awk -v n="$name" -v f="$file" -v r="$rps" -v m="$mbs" -v t=$((after - before)) -v q="$reqs" -v hz="$hz" \
        'BEGIN { printf "%s %s %s %s %.2f\n", n, f, r, m, (t / hz) * 1e6 / q }' >> "$work/results"
    echo "  $name $file: $rps req/s" >&2
}

read -r -a servers <<<"${SERVERS:-wharf-reuseport2 nginx-2workers wharf-single}"
if [[ -n ${NGINX_OPEN_FILE_CACHE:-} && " ${servers[*]} " != *" nginx-ofc "* ]]; then
    with=()
    for server in "${servers[@]}"; do
        with+=("$server")
        [[ $server == nginx-2workers ]] && with+=(nginx-ofc)
    done
    servers=("${with[@]}")
fi
[[ " ${servers[*]} " == *" nginx-2workers "* ]] || servers=(nginx-2workers "${servers[@]}")

: > "$work/results"
for round in $(seq "$rounds"); do
    echo "round $round/$rounds" >&2
    for file in "${files[@]}"; do
        for server in "${servers[@]}"; do
            case $server in
            wharf-reuseport2) start_wharf --mode reuseport:2 ;;
            wharf-reuseport2-nocache) start_wharf --mode reuseport:2 --open-file-cache 0 ;;
            wharf-reuseport2-nocoalesce) start_wharf --mode reuseport:2 --coalesce-writes 0 ;;
            wharf-single) start_wharf --mode single ;;
            nginx-2workers) start_nginx ;;
            nginx-ofc) start_nginx nginx-ofc.conf ;;
            *) echo "unknown server $server" >&2; exit 2 ;;
            esac
            port=$wharf_port
            [[ $server == nginx* ]] && port=$nginx_port
            run "$server" "$port" "$file"
            stop_servers
        done
    done
done

echo
echo "wrk -t2 -c50 -d${secs}s ${wrk_headers[*]} over $scheme, $rounds alternating rounds, medians; CPU is the server's user+system time per request"
echo
python3 - "$work/results" "${servers[*]}" "${files[@]}" <<'EOF'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
names = sys.argv[2].split()
med = {}
for name, f, rps, mbs, cpu in rows:
    med.setdefault((name, f), []).append((float(rps), float(mbs), float(cpu)))
peers = [p for p in ["nginx-2workers", "nginx-ofc"] if p in names]
heads = ["server", "file", "req/s", "MB/s"]
heads += [f"req/s vs {p}" for p in peers] + ["server CPU µs/req"]
heads += [f"CPU vs {p}" for p in peers]
print("| " + " | ".join(heads) + " |")
print("|" + "---|" * len(heads))
for f in sys.argv[3:]:
    base = {}
    for p in peers:
        runs = med[(p, f)]
        base[p] = (statistics.median(r for r, _, _ in runs), statistics.median(c for _, _, c in runs))
    for name in names:
        runs = med[(name, f)]
        rps = statistics.median(r for r, _, _ in runs)
        mbs = statistics.median(m for _, m, _ in runs)
        cpu = statistics.median(c for _, _, c in runs)
        cells = [name, f, f"{rps:.0f}", f"{mbs:.1f}"]
        cells += [f"{rps / base[p][0]:.2f}" for p in peers] + [f"{cpu:.1f}"]
        cells += [f"{cpu / base[p][1]:.2f}" for p in peers]
        print("| " + " | ".join(cells) + " |")
print()
print("per round, req/s against nginx-2workers:")
for f in sys.argv[3:]:
    for name in names:
        rounds = [r for r, _, _ in med[(name, f)]]
        nginx = [r for r, _, _ in med[("nginx-2workers", f)]]
        print(f"  {name} {f}: " + ", ".join(f"{a / b:.2f}" for a, b in zip(rounds, nginx)))
EOF
