# Shared by the compare_*.sh scripts: waiting for a server's port, and a
# process's CPU time from /proc.

wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "port $1 never opened" >&2
    return 1
}

# CPU ticks (user + system) of a process and its children threads.
ticks_of() {
    local total=0 pid
    for pid in "$@"; do
        [[ -r /proc/$pid/stat ]] || continue
        read -r -a f < <(sed 's/^.*) //' "/proc/$pid/stat")
        # utime and stime are fields 14 and 15; after the name, index 11 and 12.
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}
