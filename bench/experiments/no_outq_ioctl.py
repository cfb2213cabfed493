#!/usr/bin/python3
"""Experiments for docs/BENCHMARKS.md findings 1 and 2: pushq-1w as built
and with an LD_PRELOAD shim (module unchanged), beside nchan-1w,
alternating, 3 rounds.  Shims: no_outq_ioctl.so (no per-delivery
ioctl(SIOCOUTQNSD)), no_nodelay.so (Nagle left on, as nchan does).

    gcc -O2 -shared -fPIC -o build/bench/no_outq_ioctl.so \
        bench/experiments/no_outq_ioctl.c -ldl
    /usr/bin/python3 bench/experiments/no_outq_ioctl.py
    gcc -O2 -shared -fPIC -o build/bench/no_nodelay.so \
        bench/experiments/no_nodelay.c -ldl
    /usr/bin/python3 bench/experiments/no_outq_ioctl.py no_nodelay
"""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import bench  # noqa: E402

NAME = sys.argv[1] if len(sys.argv) > 1 else "no_outq_ioctl"
SHIM = os.path.join(bench.ROOT, "build", "bench", NAME + ".so")
WORKLOADS = [
    {"name": "ws_fanout_1k_x_500", "kind": "ws", "subs": 1000, "msgs": 500},
    {"name": "ws_paced_1k_20ps", "kind": "ws", "subs": 1000, "msgs": 60, "rate": 20},
]
VARIANTS = [("pushq-1w", False), ("pushq-1w+" + NAME, True), ("nchan-1w", False)]


def main():
    bench.raise_nofile()
    os.makedirs(bench.RUN_DIR, exist_ok=True)
    res = {}
    for rnd in range(3):
        for w in WORKLOADS:
            k = rnd % len(VARIANTS)
            for label, shim in VARIANTS[k:] + VARIANTS[:k]:
                if shim:
                    os.environ["LD_PRELOAD"] = SHIM
                try:
                    r = bench.run_one(w, label.split("+")[0], rnd)
                finally:
                    os.environ.pop("LD_PRELOAD", None)
                res.setdefault((w["name"], label), []).append(r)
                print(rnd, w["name"], label, r.get("ok"),
                      bench.summary(r, "ws"), file=sys.stderr, flush=True)
    for w in WORKLOADS:
        print("\n%s" % w["name"])
        print("| variant | correct | srv user us/dlv | srv sys us/dlv | total | "
              "deliveries/s | p50 ms | p99 ms |")
        print("|---|---|---|---|---|---|---|---|")
        for label, _ in VARIANTS:
            rs = res[(w["name"], label)]
            m = lambda k: statistics.median(r[k] for r in rs)  # noqa: E731
            print("| %s | %d/%d | %.3f | %.3f | %.3f | %.0f | %.2f | %.2f |" % (
                label, sum(1 for r in rs if r.get("ok")), len(rs),
                m("srv_user_us_per_delivery"), m("srv_sys_us_per_delivery"),
                statistics.median(r["srv_user_us_per_delivery"]
                                  + r["srv_sys_us_per_delivery"] for r in rs),
                m("deliveries_per_s"), m("lat_p50_us") / 1000,
                m("lat_p99_us") / 1000))
    with open(os.path.join(bench.ROOT, "build", "bench", NAME + ".json"), "w") as f:
        json.dump({"%s|%s" % k: v for k, v in res.items()}, f, indent=1)


if __name__ == "__main__":
    main()
