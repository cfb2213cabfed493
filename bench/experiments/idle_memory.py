#!/usr/bin/python3
"""Experiment for docs/BENCHMARKS.md finding 3: how much of an idle
WebSocket's memory follows nginx's per-request buffers.  2,000 idle
WebSockets on pushq-1w and nchan-1w with nginx's defaults, then with
request_pool_size 1k and client_header_buffer_size 256 (the handshake still
fits).  Module unchanged.

    /usr/bin/python3 bench/experiments/idle_memory.py
"""
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import bench  # noqa: E402

SMALL = "    request_pool_size 1k;\n    client_header_buffer_size 256;"
VARIANTS = [("pushq-1w", "pushq", ""), ("pushq-1w small", "pushq", SMALL),
            ("nchan-1w", "nchan", ""), ("nchan-1w small", "nchan", SMALL)]


def main():
    bench.raise_nofile()
    os.makedirs(bench.RUN_DIR, exist_ok=True)
    res = {}
    for rnd in range(2):
        for label, kind, extra in VARIANTS:
            srv = bench.Nginx(label.replace(" ", "-"), kind, 1, extra).start()
            try:
                p = srv.paths("idle%d" % rnd)
                out = subprocess.run(
                    [bench.LOADGEN, "--port", str(srv.port), "--pids",
                     ",".join(map(str, srv.pids())), "--mode", "idle",
                     "--subs", "2000", "--settle", "1", "--sub-path", p["sub"]],
                    stdout=subprocess.PIPE, text=True).stdout
            finally:
                srv.stop()
            r = bench.json.loads(out)
            res.setdefault(label, []).append(r)
            print(rnd, label, bench.summary(r, "idle"), file=sys.stderr)
    print("| server | RSS/conn bytes | anon RSS/conn bytes |")
    print("|---|---|---|")
    for label, _, _ in VARIANTS:
        rs = res[label]
        print("| %s | %.0f | %.0f |" % (
            label, statistics.median(r["rss_per_conn_b"] for r in rs),
            statistics.median(r["anon_per_conn_b"] for r in rs)))


if __name__ == "__main__":
    main()
