#!/usr/bin/env python3
"""The relay's splice threshold, measured: tcp_proxy's CPU per round trip
(utime+stime from /proc/PID/stat) when a client sends N bytes, a Python
echo upstream sends them back, and the client waits for all N; every read
the proxy makes is then about N bytes. --splice-threshold 1 makes `always`
splice every read and `never` copy every one.

    cargo build --release --example tcp_proxy
    python3 scripts/relay_threshold.py target/release/examples/tcp_proxy \
        1024,4096,8192,16384,32768,65536,262144 never,always [tcp_proxy flags]
"""
import os, socket, subprocess, sys, threading, time
PROXY = sys.argv[1]
TICK = os.sysconf('SC_CLK_TCK')

def echo_server(listener):
    while True:
        c, _ = listener.accept()
        def serve(c):
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while True:
                d = c.recv(1 << 20)
                if not d: break
                c.sendall(d)
            c.close()
        threading.Thread(target=serve, args=(c,), daemon=True).start()

def cpu(pid):
    f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK

up = socket.socket(); up.bind(('127.0.0.1', 0)); up.listen(64)
threading.Thread(target=echo_server, args=(up,), daemon=True).start()
uport = up.getsockname()[1]
print(f"{'size':>8} {'mode':>7} {'rounds':>7} {'proxy cpu us/round':>19} {'us/KiB':>8}")
for size in [int(s) for s in sys.argv[2].split(',')]:
    for mode in sys.argv[3].split(','):
        p = subprocess.Popen([PROXY, '--listen', '127.0.0.1:0', '--upstream', f'127.0.0.1:{uport}',
                              '--splice', mode, '--splice-threshold', '1'] + sys.argv[4:],
                             stdout=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        addr = line.split()[1]; host, port = addr.rsplit(':', 1)
        c = socket.create_connection((host, int(port)))
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        msg = os.urandom(size)
        buf = bytearray(size)
        for _ in range(50):  # warm up
            c.sendall(msg); v = memoryview(buf); got = 0
            while got < size: got += c.recv_into(v[got:])
        c0 = cpu(p.pid); t0 = time.time(); rounds = 0
        while time.time() - t0 < 3.0:
            c.sendall(msg); v = memoryview(buf); got = 0
            while got < size: got += c.recv_into(v[got:])
            rounds += 1
        used = cpu(p.pid) - c0
        c.close(); p.terminate(); p.wait()
        print(f"{size:>8} {mode:>7} {rounds:>7} {used*1e6/rounds:>19.1f} {used*1e6/rounds/(size/1024):>8.2f}", flush=True)
