#!/usr/bin/env bash
# What the always-on metrics cost (issue 13 §4): the server's user-space
# instructions per echoed message, this tree against BASE_REV (a commit
# without the metrics, or with an older version of them), side by side.
#
#   scripts/metrics_cost.sh BASE_REV [ROUNDS]     (default 3 rounds)
#
# Needs valgrind. Builds `compare_modes` (release) from this tree and from
# `git archive BASE_REV` (in target/metrics-cost-base),
# then runs `compare_modes --only single-edge|multi2-edge --conns 64
# --duration 8` under `callgrind --separate-threads=yes`, base and new
# alternated, and counts the instructions of every thread but the main one
# (the load client) per message echoed. Instruction counts do not depend
# on how busy the machine is, unlike CPU time; the user-space share of the
# loop thread's CPU (utime/stime, printed last) turns them into CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev=${1:?usage: scripts/metrics_cost.sh BASE_REV [ROUNDS]}
rounds=${2:-3}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install -y valgrind)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target=$PWD/target
cargo build --release --example compare_modes >&2
cp "$target/release/examples/compare_modes" "$work/new"
mkdir "$work/src"
# -m: the files get today's mtimes, so cargo never takes an older build for
# them; a target dir of its own, as cargo names the workspace's artifacts
# by their path in the workspace and the two trees would share them.
git archive "$base_rev" | tar -x -m -C "$work/src"
(cd "$work/src" && CARGO_TARGET_DIR="$target/metrics-cost-base" \
    cargo build --release --example compare_modes >&2)
cp "$target/metrics-cost-base/release/examples/compare_modes" "$work/base"
if cmp -s "$work/base" "$work/new"; then
    echo "the base and new builds are the same binary" >&2
    exit 1
fi

# instructions per message of one run: $1 build, $2 server name
per_message() {
    local out="$work/cg-$1-$2" table rate server=0 n f
    rm -f "$out"*
    table=$(valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out" \
        "$work/$1" --only "$2" --conns 64 --duration 8 --chart "$work/chart.svg" 2>/dev/null)
    rate=$(printf '%s\n' "$table" | awk -F'|' -v t="$2" '$2 == " "t" " {gsub(/ /, "", $3); print $3}')
    for f in "$out"-*; do
        case "$f" in *-01) continue ;; esac # the main thread: the load client
        n=$(awk '/^(summary|totals):/ {print $2}' "$f" | tail -1)
        server=$((server + n))
    done
    awk -v s="$server" -v r="$rate" 'BEGIN {printf "%.0f", s / (r * 8)}'
}

echo "| server | round | base instr/msg | new instr/msg | new / base |"
echo "|---|---|---|---|---|"
for round in $(seq "$rounds"); do
    for name in single-edge multi2-edge; do
        b=$(per_message base "$name")
        n=$(per_message new "$name")
        awk -v name="$name" -v r="$round" -v b="$b" -v n="$n" \
            'BEGIN {printf "| %s | %d | %d | %d | %.3f |\n", name, r, b, n, n / b}'
    done
done

# The loop thread's user-space share of its CPU time, new build, natively.
"$work/new" --only single-edge --conns 64 --duration 6 --chart "$work/chart.svg" >/dev/null 2>&1 &
pid=$!
stat() { for t in /proc/"$pid"/task/*; do
    [ "$(cat "$t/comm" 2>/dev/null)" = srv-loop-0 ] && awk '{sub(/.*\) /, ""); print $12, $13}' "$t/stat"
done; }
sleep 2
read -r u0 s0 < <(stat)
sleep 3
read -r u1 s1 < <(stat)
wait "$pid"
awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) \
    'BEGIN {printf "\nsingle-edge loop thread over 3 s: utime %d, stime %d ticks: user share %.3f\n", u, s, u / (u + s)}'
