#!/usr/bin/python3
"""Redis scale-out benchmark (issue 9; docs/BENCHMARKS.md "Redis: two
servers").

    /usr/bin/python3 bench/bench_redis.py            # make bench-redis
    options: --rounds N, --setups pushq-1srv,..., --workloads ws_fanout,...
             --subs N --msgs M (override the fan-out workload's size)

The same WebSocket subscribers, in one run, on:

    pushq-1srv        one pushq nginx (1 worker), local store, no Redis
    pushq-redis-1srv  one pushq nginx (1 worker) in Redis mode
    pushq-redis-2srv  two pushq nginx (1 worker each) sharing one Redis:
                      subscribers split half and half, publishes go to
                      the first server
    nchan-1srv        one nchan nginx (1 worker), memory store
    nchan-redis-2srv  two nchan nginx (1 worker each) with
                      `nchan_redis_url` + `nchan_use_redis on` on one Redis

Each measurement starts a fresh redis-server (tests/redis/redis_server.py:
free loopback port, no persistence) and fresh servers (bench/bench.py's
launcher and configuration, plus the Redis lines), runs
build/out/pushq-loadgen (--sub-ports splits the subscribers) and stops
everything.  Setups alternate within a round (the order rotates).  Server
CPU is summed over the nginx workers and redis-server.  The loadgen checks
every subscriber got every message once, in order ("correct").
"""

import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True      # no __pycache__ in the tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "redis"))

import bench  # noqa: E402
import redis_server  # noqa: E402

SETUPS = {
    # name: (kind, servers, redis)
    "pushq-1srv": ("pushq", 1, False),
    "pushq-redis-1srv": ("pushq", 1, True),
    "pushq-redis-2srv": ("pushq", 2, True),
    "nchan-1srv": ("nchan", 1, False),
    "nchan-redis-2srv": ("nchan", 2, True),
}
DEFAULT_SETUPS = list(SETUPS)
BASELINE = {"pushq-redis-2srv": "nchan-redis-2srv",
            "pushq-1srv": "nchan-1srv"}

WORKLOADS = [
    {"name": "ws_fanout_1k_x_200", "kind": "ws", "subs": 1000, "msgs": 200},
    {"name": "ws_paced_1k_20ps", "kind": "ws", "subs": 1000, "msgs": 40,
     "rate": 20},
    # long-poll: pushq's subscribers are named (in Redis mode every answer
    # is a take through Redis), nchan's follow Last-Modified/Etag
    {"name": "lp_fanout_1k_x_50", "kind": "lp", "subs": 1000, "msgs": 50},
]


def redis_http(kind, url):
    if kind == "pushq":
        return "    pushq_redis %s;" % url
    return "    nchan_redis_url \"%s\";\n    nchan_use_redis on;" % url


class Setup:
    def __init__(self, name):
        self.name = name
        self.kind, self.nservers, self.use_redis = SETUPS[name]
        self.redis = None
        self.servers = []

    def start(self):
        extra = ""
        if self.use_redis:
            self.redis = redis_server.start()
            extra = redis_http(self.kind, self.redis.url)
        try:
            for i in range(self.nservers):
                srv = bench.Nginx("%s-%d" % (self.name, i), self.kind, 1,
                                  extra_http=extra)
                self.servers.append(srv.start())
        except Exception:
            self.stop()
            raise
        return self

    def pids(self):
        p = [x for s in self.servers for x in s.pids()]
        if self.redis is not None and self.redis.pid():
            p.append(self.redis.pid())
        return p

    def stop(self):
        for s in self.servers:
            try:
                s.stop()
            except Exception:   # noqa: BLE001 -- stop the rest anyway
                pass
        if self.redis is not None:
            self.redis.close()


def run_one(w, setup_name, rnd):
    st = Setup(setup_name).start()
    try:
        a = st.servers[0]
        channel = "r%d_%s" % (rnd, w["name"].replace("_", ""))[:60]
        p = a.paths(channel)
        args = [bench.LOADGEN, "--port", str(a.port),
                "--pids", ",".join(str(x) for x in st.pids()),
                "--timeout", "180"]
        args += bench.workload_args(w, a, p)
        if len(st.servers) > 1:
            args += ["--sub-ports", ",".join(str(s.port)
                                             for s in st.servers)]
            if st.kind == "nchan":
                # nchan's channel info counts the subscribers of every
                # server (it keeps the count in Redis)
                args.append("--ready-global")
        res = bench.run_loadgen(args)
        res["cmd"] = " ".join(
            [args[0], "--port", "PORT_A", "--pids", "PIDS"] + args[5:])
        if "--sub-ports" in res["cmd"]:
            i = args.index("--sub-ports")
            res["cmd"] = res["cmd"].replace(args[i + 1], "PORT_A,PORT_B")
        if st.redis is not None and res.get("msgs"):
            try:
                info = dict(
                    ln.split(":", 1) for ln in
                    st.redis.cli("INFO", "all").splitlines()
                    if ":" in ln and not ln.startswith("#"))
                res["redis_cmds_per_msg"] = round(
                    int(info["total_commands_processed"]) / res["msgs"], 2)
                cpu = (float(info["used_cpu_user"])
                       + float(info["used_cpu_sys"]))
                if res.get("delivered"):
                    res["redis_cpu_us_per_delivery"] = round(
                        cpu * 1e6 / res["delivered"], 3)
            except (RuntimeError, KeyError, ValueError) as e:
                res["redis_info_error"] = str(e)[:200]
        res["logs"] = [s.log()[-300:] for s in st.servers
                       if "[error]" in s.log() or "[alert]" in s.log()
                       or "[crit]" in s.log()]
        return res
    finally:
        st.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--setups", default=",".join(DEFAULT_SETUPS))
    ap.add_argument("--workloads")
    ap.add_argument("--subs", type=int)
    ap.add_argument("--msgs", type=int)
    ap.add_argument("--out", default=os.path.join(bench.ROOT, "build",
                                                  "bench"))
    a = ap.parse_args()
    setups = a.setups.split(",")
    for s in setups:
        if s not in SETUPS:
            raise SystemExit("unknown setup %s (known: %s)"
                             % (s, ", ".join(SETUPS)))
    workloads = [dict(w) for w in WORKLOADS]
    if a.workloads:
        keep = a.workloads.split(",")
        workloads = [w for w in workloads if w["name"] in keep]
    if a.subs or a.msgs:
        for w in workloads:
            if w["name"].startswith("ws_fanout"):
                w["subs"] = a.subs or w["subs"]
                w["msgs"] = a.msgs or w["msgs"]
                w["name"] = "ws_fanout_%d_x_%d" % (w["subs"], w["msgs"])
    for f in (bench.LOADGEN, bench.PUSHQ_MODULE, redis_server.REDIS_SERVER):
        if not os.path.exists(f):
            raise SystemExit("%s missing: run make first (and install "
                             "redis-server)" % f)
    if any(SETUPS[s][0] == "nchan" for s in setups):
        bench.ensure_nchan()
    nofile = bench.raise_nofile()
    bench.log("open files limit: %d" % nofile)
    os.makedirs(bench.RUN_DIR, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)

    started = time.time()
    results, raw = {}, []
    for rnd in range(a.rounds):
        for w in workloads:
            k = rnd % len(setups)
            for s in setups[k:] + setups[:k]:
                try:
                    r = run_one(w, s, rnd)
                except Exception as e:   # noqa: BLE001 -- in the table
                    r = {"ok": False, "error": str(e)[-500:]}
                r.update({"workload": w["name"], "server": s, "round": rnd})
                raw.append(r)
                results.setdefault((w["name"], s), []).append(r)
                bench.log("round %d %-20s %-17s ok=%s %s" % (
                    rnd, w["name"], s, r.get("ok"),
                    bench.summary(r, w["kind"])))
    finished = time.time()
    bench.BASELINE.clear()
    bench.BASELINE.update(BASELINE)
    # Redis's own figures: every command it ran (scripts' inner calls
    # included) per message published, and its CPU (whole life, also in
    # "srv" above) per delivery
    redis_cols = [("redis commands/msg", "redis_cmds_per_msg", 2, None),
                  ("redis CPU us/delivery", "redis_cpu_us_per_delivery", 3,
                   None)]
    bench.METRICS["ws"] = bench.METRICS["ws"] + redis_cols
    bench.METRICS["lp"] = bench.METRICS["lp"] + [
        ("latency p50 ms", lambda r: r["lat_p50_us"] / 1000, 2, "low")] \
        + redis_cols
    text = bench.report(results, "redis", setups, workloads, started,
                        finished)
    text = text.replace("# pushq benchmark results (redis set)",
                        "# pushq Redis scale-out benchmark", 1)
    text = text.replace("ratio = pushq / nchan with the same number of "
                        "workers", "ratio = pushq / nchan in the same setup "
                        "(one server, or two servers sharing Redis)", 1)
    two = next((r["cmd"] for r in raw if "--sub-ports" in r.get("cmd", "")),
               None)
    if two:
        text += "\nTwo-server command: `%s`\n" % two
    text += ("\nSetups: %s.  Two-server setups: subscribers alternate "
             "between the servers, publishes go to the first; server CPU "
             "includes redis-server.\nCommand: `/usr/bin/python3 "
             "bench/bench_redis.py %s`\n"
             % (", ".join(setups), " ".join(sys.argv[1:])))
    md = os.path.join(a.out, "results-redis.md")
    js = os.path.join(a.out, "results-redis.json")
    with open(md, "w") as f:
        f.write(text)
    with open(js, "w") as f:
        json.dump(raw, f, indent=1)
    print(text)
    bench.log("written: %s, %s" % (md, js))
    return 0


if __name__ == "__main__":
    sys.exit(main())
