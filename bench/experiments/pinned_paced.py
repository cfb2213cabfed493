#!/usr/bin/python3
"""Experiment for docs/BENCHMARKS.md, workload (b): what the paced p99
is made of.  1,000 WebSockets at 20 msg/s (100 messages) on pushq-1w and
nchan-1w, as `make bench` runs them (the scheduler places the worker and
the load generator), then pinned: the worker on CPU 0
(`worker_cpu_affinity 01`), the load generator on CPU 1 (`taskset -c 1`).
For each run: latency p50/p99, and the worker's time running and waiting
for a CPU (/proc/<pid>/schedstat), per message.  3 rounds, alternating.

    /usr/bin/python3 bench/experiments/pinned_paced.py
"""
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import bench  # noqa: E402

MSGS = 100
VARIANTS = [("pushq-1w", "pushq", False), ("nchan-1w", "nchan", False),
            ("pushq-1w pinned", "pushq", True),
            ("nchan-1w pinned", "nchan", True)]
UNPINNED_CONF = bench.NGINX_CONF
PINNED_CONF = bench.NGINX_CONF.replace(
    "worker_processes", "worker_cpu_affinity 01;\nworker_processes", 1)


def schedstat(pid):
    with open("/proc/%d/schedstat" % pid) as f:
        run, wait = f.read().split()[:2]
    return int(run), int(wait)


def one(label, kind, pinned, rnd):
    bench.NGINX_CONF = PINNED_CONF if pinned else UNPINNED_CONF
    srv = bench.Nginx(label.replace(" ", "-"), kind, 1).start()
    try:
        pid = srv.pids()[0]
        p = srv.paths("pin%d" % rnd)
        w = {"kind": "ws", "subs": 1000, "msgs": MSGS, "rate": 20}
        args = [bench.LOADGEN, "--port", str(srv.port), "--pids", str(pid),
                "--timeout", "180"] + bench.workload_args(w, srv, p)
        if pinned:
            args = ["taskset", "-c", "1"] + args
        s0 = schedstat(pid)
        out = subprocess.run(args, stdout=subprocess.PIPE, text=True).stdout
        s1 = schedstat(pid)
    finally:
        srv.stop()
        bench.NGINX_CONF = UNPINNED_CONF
    r = json.loads(out.strip().splitlines()[-1])
    assert r["ok"], r
    return {"p50": r["lat_p50_us"] / 1000, "p99": r["lat_p99_us"] / 1000,
            "run": (s1[0] - s0[0]) / 1e6 / MSGS,
            "wait": (s1[1] - s0[1]) / 1e6 / MSGS}


def main():
    bench.raise_nofile()
    os.makedirs(bench.RUN_DIR, exist_ok=True)
    res = {}
    for rnd in range(3):
        order = VARIANTS[rnd % 2:] + VARIANTS[:rnd % 2]
        for label, kind, pinned in order:
            res.setdefault(label, []).append(one(label, kind, pinned, rnd))
    print("| 1,000 WS at 20 msg/s | p50 ms | p99 ms | worker running, "
          "ms per message | worker waiting for a CPU, ms per message |")
    print("|---|---|---|---|---|")
    for label, _, _ in VARIANTS:
        rs = res[label]
        print("| %s | %.2f | %.2f | %.2f | %.2f |" % (
            label, *(statistics.median(r[k] for r in rs)
                     for k in ("p50", "p99", "run", "wait"))))
    for label in ("", " pinned"):
        ratios = [a["p99"] / b["p99"] for a, b in
                  zip(res["pushq-1w" + label], res["nchan-1w" + label])]
        print("p99 pushq/nchan%s: %.2fx (rounds: %s)" % (
            label or " (unpinned)", statistics.median(ratios),
            ", ".join("%.2f" % x for x in ratios)))


if __name__ == "__main__":
    main()
