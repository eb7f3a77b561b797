#!/usr/bin/env bash
# compare_haproxy.sh — wharf's tcp_proxy against HAProxy (mode tcp,
# splice-auto), side by side in front of the same nginx on loopback:
# wrk through each proxy, alternating runs, medians and ratios, and each
# proxy's CPU time per request; then one 1 GiB stream through each.
#
#   scripts/compare_haproxy.sh [--mode MODE]... [ROUNDS] [SECONDS]
#                                               (default 5 rounds of 10 s)
#
# Needs nginx, haproxy, wrk and curl (apt-get install -y nginx haproxy wrk
# curl). nginx (shared/tools/nginx-peer.sh: 2 workers, sendfile, keep-alive,
# no access log) serves 1 KiB, 1 MiB and 1 GiB files from a temporary
# directory and runs for the whole script. In front of it, one at a time:
# `tcp_proxy --mode MODE` (release build; each --mode given is a wharf
# proxy of its own in every round, default reuseport:2) and HAProxy 2.6
# (shared/tools/haproxy-peer.sh: mode tcp, option splice-auto, nbthread
# 2). Each proxy is started for its run and stopped after it.
#
# Per round and file: `wrk -t2 -c50 -d SECONDS` through each proxy in turn
# (wharf modes, then HAProxy); CPU is the proxy's user + system time from
# /proc/PID/stat around the run, per request. Then per round one
# `curl -o /dev/null` of the 1 GiB file through each proxy: seconds and the
# proxy's CPU per GiB. Prints the machine, the load average before and
# after, and markdown tables with ratios to HAProxy. Listens on 127.0.0.1
# only; stops only what it started, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

modes=()
while [[ ${1:-} == --* ]]; do
    case $1 in
    --mode) modes+=("$2"); shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[[ ${#modes[@]} -gt 0 ]] || modes=(reuseport:2)
rounds=${1:-5}
secs=${2:-10}
files=(1k.bin 1m.bin)
# Ports apart from the other compare scripts' (18080...), so that another
# bench on the same machine is not measured by mistake, and below the
# ephemeral range (32768...), where an outgoing connection's TIME_WAIT would
# keep HAProxy from binding; each is checked to be free before a server
# starts on it.
nginx_port=${NGINX_PORT:-28180}
wharf_port=$((nginx_port + 1))
haproxy_port=$((nginx_port + 2))
tools=$(cd .. && pwd)/shared/tools
work=$(mktemp -d /tmp/wharf-vs-haproxy.XXXXXX)
cleanup() {
    if [[ -n "${proxy_pid:-}" ]]; then kill "$proxy_pid" 2>/dev/null || true; fi
    if [[ -n "${nginx_started:-}" ]]; then "$tools/nginx-peer.sh" stop "$nginx_port" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

for tool in nginx haproxy wrk curl; do
    command -v "$tool" >/dev/null || {
        echo "needs nginx, haproxy, wrk and curl: apt-get install -y nginx haproxy wrk curl" >&2
        exit 1
    }
done

mkdir -p "$work/www"
head -c 1024 /dev/urandom > "$work/www/1k.bin"
head -c 1048576 /dev/urandom > "$work/www/1m.bin"
# 1 GiB, sparse-free but cheap to make; nginx sends it from the page cache.
head -c 1048576 /dev/urandom > "$work/1m.seed"
for _ in $(seq 1024); do cat "$work/1m.seed"; done > "$work/www/1g.bin"
cat "$work/www/1g.bin" > /dev/null

cargo build --release --example tcp_proxy >/dev/null 2>&1

# wait_port, ticks_of
source scripts/measure_lib.sh

# port_free PORT: nothing listens there yet (else another program would be
# measured instead of ours).
port_free() {
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        echo "port $1 is taken by another program; set NGINX_PORT to another base" >&2
        exit 1
    fi
}

port_free "$nginx_port"
"$tools/nginx-peer.sh" start "$nginx_port" "$work/www" >/dev/null
nginx_started=1

start_wharf() {
    port_free "$wharf_port"
    ./target/release/examples/tcp_proxy --listen "127.0.0.1:$wharf_port" \
        --upstream "127.0.0.1:$nginx_port" --mode "$1" >> "$work/wharf.log" &
    proxy_pid=$!
    proxy_port=$wharf_port
    wait_port "$wharf_port"
}

start_haproxy() {
    port_free "$haproxy_port"
    "$tools/haproxy-peer.sh" run "$haproxy_port" "$nginx_port" >> "$work/haproxy.log" 2>&1 &
    proxy_pid=$!
    proxy_port=$haproxy_port
    wait_port "$haproxy_port"
}

start_proxy() {
    case $1 in
    haproxy) start_haproxy ;;
    wharf-*) start_wharf "${1#wharf-}" ;;
    esac
}

stop_proxy() {
    # tcp_proxy shuts down gracefully on SIGINT and prints its counters;
    # HAProxy stops on SIGTERM.
    local signal=INT
    [[ $proxy_port == "$haproxy_port" ]] && signal=TERM
    kill -"$signal" "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
    proxy_pid=""
}

hz=$(getconf CLK_TCK)

# alive NAME: the proxy measured is still the one started (it did not exit,
# for instance because it could not bind).
alive() {
    kill -0 "$proxy_pid" 2>/dev/null || { echo "$1 exited during its run" >&2; exit 1; }
}

# run NAME FILE: one wrk run through the running proxy; appends
# "name file req/s MB/s cpu_us/req".
run() {
    local name=$1 file=$2 out before after reqs rps mbs
    before=$(ticks_of "$proxy_pid")
    out=$(wrk -t2 -c50 -d"${secs}s" "http://127.0.0.1:$proxy_port/$file")
    after=$(ticks_of "$proxy_pid")
    alive "$name"
    if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then
        echo "  $name $file: errors: $(grep 'Non-2xx\|Socket errors' <<<"$out")" >&2
    fi
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    mbs=$(awk '/Transfer\/sec/ {v=$2; if (v ~ /GB/) {sub("GB","",v); v*=1024} else if (v ~ /KB/) {sub("KB","",v); v/=1024} else {sub("MB","",v)}; print v}' <<<"$out")
    awk -v n="$name" -v f="$file" -v r="$rps" -v m="$mbs" -v t=$((after - before)) -v q="$reqs" -v hz="$hz" \
        'BEGIN { printf "%s %s %s %s %.2f\n", n, f, r, m, (t / hz) * 1e6 / q }' >> "$work/results"
    echo "  $name $file: $rps req/s" >&2
}

# stream NAME: one 1 GiB download through the running proxy; appends
# "name seconds cpu_ms_per_gib".
stream() {
    local name=$1 before after secs_taken size
    before=$(ticks_of "$proxy_pid")
    read -r secs_taken size < <(curl -s -o /dev/null -w '%{time_total} %{size_download}\n' \
        "http://127.0.0.1:$proxy_port/1g.bin")
    after=$(ticks_of "$proxy_pid")
    alive "$name"
    [[ $size == 1073741824 ]] || echo "  $name 1 GiB: got $size bytes" >&2
    awk -v n="$name" -v s="$secs_taken" -v t=$((after - before)) -v hz="$hz" \
        'BEGIN { printf "%s %s %.1f\n", n, s, (t / hz) * 1e3 }' >> "$work/streams"
    echo "  $name 1 GiB: $secs_taken s" >&2
}

proxies=()
for mode in "${modes[@]}"; do proxies+=("wharf-$mode"); done
proxies+=(haproxy)

load_before=$(cat /proc/loadavg)
: > "$work/results"
: > "$work/streams"
for round in $(seq "$rounds"); do
    echo "round $round/$rounds (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    for file in "${files[@]}"; do
        for p in "${proxies[@]}"; do
            start_proxy "$p"
            run "$p" "$file"
            stop_proxy
        done
    done
    for p in "${proxies[@]}"; do
        start_proxy "$p"
        stream "$p"
        stop_proxy
    done
done
load_after=$(cat /proc/loadavg)

echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), Linux $(uname -r)"
echo "load average before: ${load_before% *}; after: ${load_after% *}"
echo "wharf: tcp_proxy (release) --mode ${modes[*]}; HAProxy $(haproxy -v | awk 'NR==1 {print $3}') mode tcp, splice-auto, nbthread 2; upstream nginx $(nginx -v 2>&1 | sed 's|.*/||'), 2 workers"
echo "wrk -t2 -c50 -d${secs}s through each proxy, $rounds alternating rounds, medians; CPU is the proxy's user+system time"
echo "wharf's counters (last run): $(grep '^connections' "$work/wharf.log" | tail -1)"
echo
echo "| proxy | file | req/s | MB/s | ratio to HAProxy | proxy CPU µs/req | CPU ratio to HAProxy |"
echo "|---|---|---|---|---|---|---|"
python3 - "$work/results" "${files[@]}" -- "${proxies[@]}" <<'EOF'
import sys, statistics
args = sys.argv[2:]
files, proxies = args[:args.index("--")], args[args.index("--") + 1:]
med = {}
for line in open(sys.argv[1]):
    name, f, rps, mbs, cpu = line.split()
    med.setdefault((name, f), []).append((float(rps), float(mbs), float(cpu)))
for f in files:
    def m(name, i):
        return statistics.median(run[i] for run in med[(name, f)])
    for name in proxies:
        rps, mbs, cpu = m(name, 0), m(name, 1), m(name, 2)
        print(f"| {name} | {f} | {rps:.0f} | {mbs:.1f} | {rps / m('haproxy', 0):.2f} "
              f"| {cpu:.1f} | {cpu / m('haproxy', 2):.2f} |")
    for name in proxies[:-1]:
        per_round = [w[0] / h[0] for w, h in zip(med[(name, f)], med[("haproxy", f)])]
        print(f"<!-- {name} {f} per round: {' '.join(f'{r:.2f}' for r in per_round)} -->")
EOF
echo
echo "One 1 GiB download (curl -o /dev/null) through each proxy per round, medians"
echo
echo "| proxy | seconds | GiB/s | proxy CPU ms/GiB | CPU ratio to HAProxy |"
echo "|---|---|---|---|---|"
python3 - "$work/streams" "${proxies[@]}" <<'EOF'
import sys, statistics
med = {}
for line in open(sys.argv[1]):
    name, secs, cpu = line.split()
    med.setdefault(name, []).append((float(secs), float(cpu)))
h = statistics.median(c for _, c in med["haproxy"])
for name in sys.argv[2:]:
    secs = statistics.median(s for s, _ in med[name])
    cpu = statistics.median(c for _, c in med[name])
    print(f"| {name} | {secs:.2f} | {1 / secs:.2f} | {cpu:.0f} | {cpu / h:.2f} |")
EOF
