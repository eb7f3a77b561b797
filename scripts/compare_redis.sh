#!/usr/bin/env bash
# compare_redis.sh — redis-benchmark against examples/kv_server in every
# reactor mode × trigger and against Redis on loopback, alternating the
# servers within each round; medians of requests/s per command and each
# server's CPU time per request (user + system, from /proc), and
# redis-benchmark's own: the client is one thread on the same two cores, so
# when it is busy all the time it, not the server, sets the rate.
#
#   scripts/compare_redis.sh [ROUNDS] [N_P1] [N_P16]   (default 3, 100000, 400000)
#   MODES="single" scripts/compare_redis.sh 5           (only these modes)
#
# Needs redis-server and redis-benchmark (apt-get install -y redis-server
# redis-tools; this script runs its own redis-server on a free port with
# --save '' --appendonly no, never the system service). Prints a markdown
# table.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
n1=${2:-100000}
n16=${3:-400000}
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
    echo "needs redis-server and redis-benchmark: apt-get install -y redis-server redis-tools" >&2
    exit 1
}
cargo build --release --example kv_server >/dev/null 2>&1
work=$(mktemp -d /tmp/wharf-vs-redis.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# wait_port, ticks_of
source scripts/measure_lib.sh

declare -A port_of pid_of
names=()
port=16400
start() { # name, command...
    local name=$1
    shift
    "$@" >/dev/null 2>&1 &
    pid_of[$name]=$!
    pids+=($!)
    port_of[$name]=$port
    names+=("$name")
    wait_port "$port"
    port=$((port + 1))
}
start redis redis-server --port "$port" --save '' --appendonly no --bind 127.0.0.1
for mode in ${MODES:-single pool:2 multi:2 multi:2,workers=2 reuseport:2}; do
    for trigger in edge level; do
        start "wharf-$mode-$trigger" ./target/release/examples/kv_server \
            --addr "127.0.0.1:$port" --mode "$mode" --trigger "$trigger"
    done
done

hz=$(getconf CLK_TCK)
for round in $(seq "$rounds"); do
    echo "round $round/$rounds" >&2
    for pipeline in 1 16; do
        n=$n1
        [[ $pipeline == 16 ]] && n=$n16
        for name in "${names[@]}"; do
            before=$(ticks_of "${pid_of[$name]}")
            # bash's `time` gives the client's own CPU time (user, system).
            { TIMEFORMAT='%U %S'; time redis-benchmark -h 127.0.0.1 -p "${port_of[$name]}" \
                -t ping,set,get -n "$n" -c 50 -P "$pipeline" -q >"$work/out" 2>/dev/null; } 2>"$work/client"
            after=$(ticks_of "${pid_of[$name]}")
            out=$(tr '\r' '\n' < "$work/out" | grep 'requests per second')
            # PING_INLINE, PING_MBULK, SET, GET: 4 × n requests.
            cpu=$(echo "scale=3; ($after - $before) * 1000000 / $hz / ($n * 4)" | bc)
            client=$(awk -v n="$n" '{printf "%.3f", ($1 + $2) * 1000000 / (n * 4)}' "$work/client")
            while read -r cmd rate _; do
                echo "$name P$pipeline ${cmd%:} ${rate} $cpu $client" >> "$work/results"
            done <<< "$out"
            echo "  $name -P $pipeline: $(echo "$out" | awk '{printf "%s %s  ", $1, $2}') cpu ${cpu} µs/req, client ${client} µs/req" >&2
        done
    done
done

echo
echo "redis-benchmark -t ping,set,get -c 50 (-n $n1 at -P 1, $n16 at -P 16), $rounds alternating rounds, medians; CPU is the user+system time per request over all four commands, of the server and of redis-benchmark itself"
echo
echo "| server | -P | PING_INLINE | PING_MBULK | SET | GET | ratio to Redis (SET, GET) | server CPU µs/req | client CPU µs/req |"
echo "|---|---|---|---|---|---|---|---|---|"
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for pipeline in 1 16; do
    for name in "${names[@]}"; do
        row="| $name | $pipeline"
        for cmd in PING_INLINE PING_MBULK SET GET; do
            m=$(awk -v n="$name" -v p="P$pipeline" -v c="$cmd" '$1==n && $2==p && $3==c {print $4}' "$work/results" | median)
            row="$row | $(printf '%.0f' "$m")"
            declare "m_${cmd}=$m"
        done
        rs=$(awk -v p="P$pipeline" '$1=="redis" && $2==p && $3=="SET" {print $4}' "$work/results" | median)
        rg=$(awk -v p="P$pipeline" '$1=="redis" && $2==p && $3=="GET" {print $4}' "$work/results" | median)
        cpu=$(awk -v n="$name" -v p="P$pipeline" '$1==n && $2==p && $3=="GET" {print $5}' "$work/results" | median)
        client=$(awk -v n="$name" -v p="P$pipeline" '$1==n && $2==p && $3=="GET" {print $6}' "$work/results" | median)
        row="$row | $(echo "scale=2; $m_SET / $rs" | bc)×, $(echo "scale=2; $m_GET / $rg" | bc)× | $cpu | $client |"
        echo "$row"
    done
done
