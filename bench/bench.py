#!/usr/bin/python3
"""pushq against nchan: the benchmark driver (docs/BENCHMARKS.md).

    /usr/bin/python3 bench/bench.py --quick     # make bench-quick (~2 min)
    /usr/bin/python3 bench/bench.py --full      # make bench
    options: --rounds N, --servers pushq-1w,nchan-1w,...,
             --workloads ws_fanout,...  --out DIR

Each measurement starts a fresh server on 127.0.0.1 (free port) from a
private prefix under build/bench/run/, runs build/out/pushq-loadgen against
it and stops it.  Servers run alternately (the order rotates each round);
the tables give the median over rounds with min-max, and ratios to nchan
are taken within a round, then their median is reported.

Servers: pushq in Debian's nginx with 1 and 2 workers, nchan (Debian's
libnginx-mod-nchan, installed with apt-get if missing) in the same nginx
with 1 and 2 workers, and pushq-civetweb.  Server CPU (utime, stime of the
worker processes) and RSS are read from /proc by the load generator.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "build", "out")
LOADGEN = os.path.join(OUT, "pushq-loadgen")
PUSHQ_MODULE = os.path.join(OUT, "ngx_http_pushq_module.so")
CIVETWEB = os.path.join(OUT, "pushq-civetweb")
CORE_BENCH = os.path.join(OUT, "bench", "core_bench")
NCHAN_MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so"
NGINX = "/usr/sbin/nginx"
RUN_DIR = os.path.join(ROOT, "build", "bench", "run")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ensure_nchan():
    if os.path.exists(NCHAN_MODULE):
        return
    log("nchan missing: apt-get install -y libnginx-mod-nchan")
    subprocess.run(["apt-get", "install", "-y", "libnginx-mod-nchan"],
                   check=True, stdout=subprocess.DEVNULL)
    if not os.path.exists(NCHAN_MODULE):
        raise SystemExit("libnginx-mod-nchan did not install %s" % NCHAN_MODULE)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --- servers -------------------------------------------------------------

NGINX_CONF = """# written by bench/bench.py
user root;
worker_processes %(workers)d;
worker_rlimit_nofile %(nofile)d;
pid logs/nginx.pid;
error_log logs/error.log warn;
load_module %(module)s;

events {
    worker_connections %(wconn)d;
}

http {
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    client_max_body_size 1m;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    default_type application/octet-stream;

%(http)s

    server {
        listen 127.0.0.1:%(port)d reuseport backlog=4096;
        server_name localhost;

        # nginx's own ceiling for workload (e)
        location = /ok { return 200; }

%(locations)s
    }
}
"""

PUSHQ_HTTP = """    pushq_shm_size              256m;
    pushq_buffer                1000;
    pushq_buffer_bytes          16m;
    pushq_message_ttl           1h;
    pushq_client_ttl            5m;
    pushq_longpoll_timeout      30s;
    pushq_max_message_size      64k;
    pushq_websocket_ping        300s;
    pushq_websocket_max_backlog 1m;"""

PUSHQ_LOCATIONS = """        location = /pub    { pushq_publisher; }
        location = /sub    { pushq_subscriber; pushq_websocket_publish off; }
        location = /subm   { pushq_subscriber; pushq_websocket_publish off; }
        location = /status { pushq_status; }"""

# nchan, configured to match: 1000 messages kept per channel for an hour,
# subscribers start at the oldest kept message (the benchmark uses a fresh
# channel each run, so both start with the first message published after
# they connect), WebSocket and long-poll on /sub; /subm is long-poll with
# multipart answers (nchan's counterpart of pushq's batch).
NCHAN_HTTP = """    nchan_shared_memory_size 256m;"""

NCHAN_LOCATIONS = """        location = /pub {
            nchan_publisher;
            nchan_channel_id $arg_channel;
            nchan_message_buffer_length 1000;
            nchan_message_timeout 1h;
        }
        location = /sub {
            nchan_subscriber websocket longpoll;
            nchan_channel_id $arg_channel;
            nchan_subscriber_first_message oldest;
            nchan_subscriber_timeout 30s;
            nchan_websocket_ping_interval 300;
        }
        location = /subm {
            nchan_subscriber longpoll;
            nchan_channel_id $arg_channel;
            nchan_subscriber_first_message oldest;
            nchan_subscriber_timeout 30s;
            nchan_longpoll_multipart_response on;
        }
        location = /status { nchan_stub_status; }"""


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and "worker process" in cmd:
            out.append(int(d))
    return sorted(out)


class Nginx:
    def __init__(self, name, kind, workers, extra_http=""):
        self.name, self.kind, self.workers = name, kind, workers
        self.extra_http = extra_http     # experiments only
        self.nchan = kind == "nchan"
        self.proc = None

    def start(self):
        self.prefix = os.path.join(RUN_DIR, "%s-%d" % (self.name, os.getpid()))
        shutil.rmtree(self.prefix, ignore_errors=True)
        for d in ("logs", "tmp"):
            os.makedirs(os.path.join(self.prefix, d))
        self.port = free_port()
        conf = NGINX_CONF % {
            "workers": self.workers, "nofile": 20000, "wconn": 15000,
            "module": NCHAN_MODULE if self.nchan else PUSHQ_MODULE,
            "http": (NCHAN_HTTP if self.nchan else PUSHQ_HTTP) + "\n"
                    + self.extra_http,
            "locations": NCHAN_LOCATIONS if self.nchan else PUSHQ_LOCATIONS,
            "port": self.port}
        self.conf = os.path.join(self.prefix, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        err = open(os.path.join(self.prefix, "logs", "stderr.log"), "ab")
        self.proc = subprocess.Popen(
            [NGINX, "-p", self.prefix + "/", "-c", self.conf,
             "-g", "daemon off;"], stdin=subprocess.DEVNULL, stdout=err,
            stderr=err, cwd=self.prefix)
        err.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited: %s" % (self.name, self.log()))
            if len(children(self.proc.pid)) == self.workers:
                try:
                    socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                    return self
                except OSError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("%s did not start: %s" % (self.name, self.log()))

    def pids(self):
        return children(self.proc.pid)

    def log(self):
        text = ""
        for f in ("error.log", "stderr.log"):
            try:
                with open(os.path.join(self.prefix, "logs", f),
                          errors="replace") as fh:
                    text += fh.read()
            except OSError:
                pass
        return text[-2000:]

    def paths(self, channel):
        return {
            "sub": "/sub?channel=%s" % channel,
            "subm": "/subm?channel=%s" % channel,
            "pub": "/pub?channel=%s" % channel,
            "ready": ("/pub?channel=%s" if self.nchan
                      else "/status?channel=%s") % channel,
        }

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)   # fast shutdown
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        shutil.rmtree(self.prefix, ignore_errors=True)


class Civetweb:
    nchan = False
    kind = "civetweb"
    workers = 1
    # each held long-poll or WebSocket holds one CivetWeb thread
    THREADS = 1200

    def __init__(self, name):
        self.name = name
        self.proc = None

    def start(self):
        self.prefix = os.path.join(RUN_DIR, "%s-%d" % (self.name, os.getpid()))
        shutil.rmtree(self.prefix, ignore_errors=True)
        os.makedirs(self.prefix)
        self.port = free_port()
        conf = os.path.join(self.prefix, "pushq-civetweb.conf")
        lines = [
            "listening_ports 127.0.0.1:%d" % self.port,
            "num_threads %d" % self.THREADS,
            "listen_backlog 4096",
            "connection_queue 4096",
            "document_root %s" % self.prefix,
            "enable_keep_alive yes",
            "publisher_uri /pub",
            "subscriber_uri /sub,/subm",
            "status_uri /status",
            "store_size 256m",
            "buffer 1000",
            "buffer_bytes 16m",
            "message_ttl 1h",
            "client_ttl 5m",
            "longpoll_timeout 30s",
            "max_message_size 64k",
            "websocket_publish off",
            "websocket_ping 300s",
            "websocket_max_backlog 1m",
        ]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.logfile = os.path.join(self.prefix, "stderr.log")
        with open(self.logfile, "ab") as lf:
            self.proc = subprocess.Popen([CIVETWEB, conf], stdin=subprocess.DEVNULL,
                                         stdout=lf, stderr=lf, cwd=self.prefix)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited: %s" % (self.name, self.log()))
            if "listening on port" in self.log():
                try:
                    socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                    return self
                except OSError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("%s did not start: %s" % (self.name, self.log()))

    def pids(self):
        return [self.proc.pid]

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def paths(self, channel):
        return {"sub": "/sub?channel=%s" % channel,
                "subm": "/subm?channel=%s" % channel,
                "pub": "/pub?channel=%s" % channel,
                "ready": "/status?channel=%s" % channel}

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        shutil.rmtree(self.prefix, ignore_errors=True)


SERVERS = {
    "pushq-1w": lambda: Nginx("pushq-1w", "pushq", 1),
    "pushq-2w": lambda: Nginx("pushq-2w", "pushq", 2),
    "nchan-1w": lambda: Nginx("nchan-1w", "nchan", 1),
    "nchan-2w": lambda: Nginx("nchan-2w", "nchan", 2),
    "civetweb": lambda: Civetweb("civetweb"),
}
# whom each server is compared with (same number of nginx workers)
BASELINE = {"pushq-1w": "nchan-1w", "pushq-2w": "nchan-2w",
            "civetweb": "nchan-1w"}


# --- workloads -------------------------------------------------------------
#
# name -> (loadgen arguments, the server kinds it runs on).  Sizes for the
# quick set are scaled down; see SETS.

def workload_args(w, srv, p):
    kind, a = w["kind"], []
    if kind == "ws":
        a = ["--mode", "ws", "--subs", w["subs"], "--msgs", w["msgs"],
             "--rate", w.get("rate", 0), "--sub-path", p["sub"],
             "--pub-path", p["pub"], "--ready-path", p["ready"]]
    elif kind == "lp":
        sub = p["subm"] if (w.get("batch") and srv.nchan) else p["sub"]
        a = ["--mode", "lp", "--subs", w["subs"], "--msgs", w["msgs"],
             "--pipeline", w.get("pipeline", 1),
             "--sub-path", sub, "--pub-path", p["pub"],
             "--ready-path", p["ready"]]
        if srv.nchan:
            a.append("--nchan")
        else:
            a.append("--named")
            if w.get("batch"):
                a += ["--batch", w["batch"]]
    elif kind == "idle":
        a = ["--mode", "idle", "--subs", w["subs"], "--sub-path", p["sub"],
             "--settle", w.get("settle", 2)]
    elif kind == "pub":
        a = ["--mode", "pub", "--conns", 8, "--duration", w["duration"],
             "--pipeline", w.get("pipeline", 1),
             "--pub-path", "/ok" if w.get("ceiling") else p["pub"]]
    return [str(x) for x in a]


SETS = {
    "quick": {
        "rounds": 2,
        "servers": ["pushq-1w", "pushq-2w", "nchan-1w", "civetweb"],
        "workloads": [
            {"name": "ws_fanout_1k_x_200", "kind": "ws", "subs": 1000, "msgs": 200},
            {"name": "ws_paced_1k_20ps", "kind": "ws", "subs": 1000, "msgs": 40, "rate": 20},
            {"name": "lp_fanout_1k_x_50", "kind": "lp", "subs": 1000, "msgs": 50},
            {"name": "lp_batch_1k_x_50", "kind": "lp", "subs": 1000, "msgs": 50, "batch": 100},
            {"name": "ws_idle_2k", "kind": "idle", "subs": 2000, "settle": 1,
             "skip": ["civetweb"]},
            {"name": "ws_idle_1k", "kind": "idle", "subs": 1000, "settle": 1,
             "only": ["civetweb"]},
            {"name": "publish_8conn", "kind": "pub", "duration": 2},
            {"name": "return200_8conn", "kind": "pub", "duration": 2, "ceiling": True,
             "only": ["pushq-1w", "pushq-2w", "nchan-1w", "nchan-2w"]},
        ],
    },
    "full": {
        "rounds": 3,
        "servers": ["pushq-1w", "pushq-2w", "nchan-1w", "nchan-2w", "civetweb"],
        "workloads": [
            {"name": "ws_fanout_1k_x_1k", "kind": "ws", "subs": 1000, "msgs": 1000},
            {"name": "ws_fanout_10k_x_100", "kind": "ws", "subs": 10000, "msgs": 100,
             "skip": ["civetweb"]},
            {"name": "ws_paced_1k_20ps", "kind": "ws", "subs": 1000, "msgs": 100, "rate": 20},
            {"name": "lp_fanout_1k_x_200", "kind": "lp", "subs": 1000, "msgs": 200},
            {"name": "lp_batch_1k_x_200", "kind": "lp", "subs": 1000, "msgs": 200, "batch": 100},
            {"name": "ws_idle_10k", "kind": "idle", "subs": 10000, "skip": ["civetweb"]},
            {"name": "ws_idle_1k", "kind": "idle", "subs": 1000, "only": ["civetweb"]},
            {"name": "publish_8conn", "kind": "pub", "duration": 4},
            {"name": "return200_8conn", "kind": "pub", "duration": 4, "ceiling": True,
             "only": ["pushq-1w", "pushq-2w", "nchan-1w", "nchan-2w"]},
        ],
    },
}


def runs_on(w, name):
    if "only" in w and name not in w["only"]:
        return False
    return name not in w.get("skip", [])


def run_loadgen(args):
    """Runs the load generator; its JSON result (ok false with the output
    when it printed none), with the wall time and any stderr."""
    t = time.monotonic()
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=240)
    try:
        res = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        res = {"ok": False, "error": (r.stdout + r.stderr)[-500:]}
    res["elapsed_s"] = round(time.monotonic() - t, 2)
    if r.stderr.strip():
        res["stderr"] = r.stderr.strip()[-300:]
    return res


def run_one(w, server_name, rnd):
    srv = SERVERS[server_name]()
    srv.start()
    try:
        channel = "b%d_%s" % (rnd, w["name"].replace("_", ""))[:60]
        p = srv.paths(channel)
        args = [LOADGEN, "--port", str(srv.port), "--pids",
                ",".join(str(x) for x in srv.pids()), "--timeout", "180"]
        args += workload_args(w, srv, p)
        res = run_loadgen(args)
        res["cmd"] = " ".join(args[:1] + ["--port", "PORT", "--pids", "PIDS"]
                              + args[5:])
        return res
    finally:
        srv.stop()


# --- reporting -------------------------------------------------------------

def med(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None, None
    return statistics.median(xs), min(xs), max(xs)


def fmt(v, digits=0):
    if v is None:
        return "-"
    if digits == 0:
        return "{:,.0f}".format(v)
    return "{:,.{d}f}".format(v, d=digits)


def cell(xs, digits=0):
    m, lo, hi = med(xs)
    if m is None:
        return "-"
    if len([x for x in xs if x is not None]) == 1:
        return fmt(m, digits)
    return "%s (%s-%s)" % (fmt(m, digits), fmt(lo, digits), fmt(hi, digits))


# metric: (label, key or function, digits, better)
METRICS = {
    "ws": [("deliveries/s", "deliveries_per_s", 0, "high"),
           ("srv user us/delivery", "srv_user_us_per_delivery", 3, "low"),
           ("srv sys us/delivery", "srv_sys_us_per_delivery", 3, "low"),
           ("srv total us/delivery", lambda r: r["srv_user_us_per_delivery"]
            + r["srv_sys_us_per_delivery"], 3, "low"),
           ("latency p50 ms", lambda r: r["lat_p50_us"] / 1000, 2, "low"),
           ("latency p99 ms", lambda r: r["lat_p99_us"] / 1000, 2, "low"),
           ("latency max ms", lambda r: r["lat_max_us"] / 1000, 2, "low"),
           ("loadgen CPU %", "own_cpu_pct", 0, None)],
    "lp": [("deliveries/s", "deliveries_per_s", 0, "high"),
           ("srv user us/delivery", "srv_user_us_per_delivery", 3, "low"),
           ("srv sys us/delivery", "srv_sys_us_per_delivery", 3, "low"),
           ("latency p99 ms", lambda r: r["lat_p99_us"] / 1000, 2, "low"),
           ("loadgen CPU %", "own_cpu_pct", 0, None)],
    "idle": [("RSS/conn bytes", "rss_per_conn_b", 0, "low"),
             ("anon RSS/conn bytes", "anon_per_conn_b", 0, "low"),
             ("RSS after kB", "rss_after_kb", 0, None),
             ("connect s", "connect_s", 2, None)],
    "pub": [("publishes/s", "pubs_per_s", 0, "high"),
            ("srv CPU us/publish", "srv_cpu_us_per_pub", 2, "low"),
            ("publishes per srv CPU-s", lambda r: 1e6 / r["srv_cpu_us_per_pub"],
             0, "high"),
            ("publish p99 ms", lambda r: r["pub_lat_p99_us"] / 1000, 2, "low"),
            ("loadgen CPU %", "own_cpu_pct", 0, None)],
}


def value(r, key):
    if r is None or "error" in r:
        return None
    try:
        return key(r) if callable(key) else r.get(key)
    except (KeyError, TypeError):
        return None


def report(results, set_name, servers, workloads, started, finished):
    lines = ["# pushq benchmark results (%s set)" % set_name, ""]
    lines.append("Run %s to %s UTC on %s (%d CPUs, %s), %d round(s); "
                 "median (min-max) over rounds; ratio = pushq / nchan with "
                 "the same number of workers, within each round, median." % (
                     time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
                     time.strftime("%H:%M", time.gmtime(finished)),
                     platform.node(), os.cpu_count(), cpu_model(),
                     max(len(v) for v in results.values()) if results else 0))
    lines.append("")
    for w in workloads:
        lines.append("## %s" % w["name"])
        lines.append("")
        names = [s for s in servers if runs_on(w, s)]
        metrics = METRICS[w["kind"]]
        if w.get("ceiling"):
            metrics = [m for m in metrics if m[0] != "srv CPU us/publish"]
            metrics = [m[:3] + (None,) for m in metrics]   # a ceiling, no ratio
        head = "| server | correct | " + " | ".join(m[0] for m in metrics) + " |"
        lines.append(head)
        lines.append("|" + "---|" * (len(metrics) + 2))
        for s in names:
            rs = results.get((w["name"], s), [])
            okc = sum(1 for r in rs if r.get("ok"))
            row = "| %s | %d/%d | " % (s, okc, len(rs))
            row += " | ".join(cell([value(r, m[1]) for r in rs], m[2])
                              for m in metrics) + " |"
            lines.append(row)
        # ratios
        for s in names:
            base = BASELINE.get(s)
            if base is None or base not in names:
                continue
            rs, bs = results.get((w["name"], s), []), results.get((w["name"], base), [])
            parts = []
            for label, key, _, better in metrics:
                if better is None:
                    continue
                ratios = []
                for r, b in zip(rs, bs):
                    rv, bv = value(r, key), value(b, key)
                    if rv is not None and bv:
                        ratios.append(rv / bv)
                if ratios:
                    parts.append("%s %.2fx" % (label, statistics.median(ratios)))
            if parts:
                lines.append("")
                lines.append("%s / %s: %s" % (s, base, "; ".join(parts)))
        if w["kind"] == "pub" and not w.get("ceiling"):
            for s in names:
                rs = results.get((w["name"], s), [])
                cs = results.get(("return200_8conn", s), [])
                ratios = [value(r, "pubs_per_s") / value(c, "pubs_per_s")
                          for r, c in zip(rs, cs)
                          if value(r, "pubs_per_s") and value(c, "pubs_per_s")]
                cap = [(1 / value(r, "srv_cpu_us_per_pub"))
                       / (1 / value(c, "srv_cpu_us_per_pub"))
                       for r, c in zip(rs, cs)
                       if value(r, "srv_cpu_us_per_pub")
                       and value(c, "srv_cpu_us_per_pub")]
                if ratios:
                    lines.append("")
                    lines.append("%s / its own `return 200` in the same nginx: "
                                 "publishes/s %.2fx; publishes per server "
                                 "CPU-s %.2fx" % (s, statistics.median(ratios),
                                                  statistics.median(cap) if cap
                                                  else float("nan")))
        limited = [s for s in names
                   if (med([value(r, "own_cpu_pct")
                            for r in results.get((w["name"], s), [])])[0] or 0) >= 90]
        if limited:
            lines.append("")
            lines.append("Load generator at >= 90 %% of a core (it, not the server, "
                         "was the limit): %s" % ", ".join(limited))
        bad = [(s, r) for s in names for r in results.get((w["name"], s), [])
               if not r.get("ok")]
        for s, r in bad:
            lines.append("")
            lines.append("NOT CORRECT: %s: %s" % (s, json.dumps(
                {k: r.get(k) for k in ("expected", "delivered", "lost", "dup",
                                       "reorder", "bad", "closed_by_server",
                                       "pub_err", "http_err", "subs_ready",
                                       "error", "stderr") if r.get(k)})))
        cmd = next((r.get("cmd") for s in names
                    for r in results.get((w["name"], s), []) if r.get("cmd")), "")
        lines.append("")
        lines.append("Command (one server): `%s`" % cmd)
        lines.append("")
    return "\n".join(lines) + "\n"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true")
    g.add_argument("--full", action="store_true")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--servers")
    ap.add_argument("--workloads")
    ap.add_argument("--no-core", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench"))
    a = ap.parse_args()
    set_name = "full" if a.full else "quick"
    cfg = SETS[set_name]
    rounds = a.rounds or cfg["rounds"]
    servers = a.servers.split(",") if a.servers else cfg["servers"]
    workloads = cfg["workloads"]
    if a.workloads:
        keep = a.workloads.split(",")
        workloads = [w for w in workloads if w["name"] in keep]

    for f in (LOADGEN, PUSHQ_MODULE, CIVETWEB):
        if not os.path.exists(f):
            raise SystemExit("%s missing: run make first" % f)
    if any(SERVERS[s]().nchan for s in servers):
        ensure_nchan()
    nofile = raise_nofile()
    log("open files limit: %d" % nofile)
    os.makedirs(RUN_DIR, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)

    started = time.time()
    results = {}
    raw = []
    for rnd in range(rounds):
        for w in workloads:
            names = [s for s in servers if runs_on(w, s)]
            k = rnd % len(names) if names else 0
            for s in names[k:] + names[:k]:      # alternate the order
                try:
                    r = run_one(w, s, rnd)
                except Exception as e:   # noqa: BLE001 -- reported in the table
                    r = {"ok": False, "error": str(e)[-500:]}
                r.update({"workload": w["name"], "server": s, "round": rnd})
                raw.append(r)
                results.setdefault((w["name"], s), []).append(r)
                log("round %d %-22s %-9s ok=%s %s" % (
                    rnd, w["name"], s, r.get("ok"), summary(r, w["kind"])))
    core = None
    if not a.no_core and os.path.exists(CORE_BENCH):
        log("core benchmark: %s" % CORE_BENCH)
        c = subprocess.run([CORE_BENCH], stdout=subprocess.PIPE, text=True)
        core = c.stdout
    finished = time.time()
    text = report(results, set_name, servers, workloads, started, finished)
    if core:
        text += "## core (bench-core)\n\n```\n" + core.strip() + "\n```\n"
    md = os.path.join(a.out, "results-%s.md" % set_name)
    js = os.path.join(a.out, "results-%s.json" % set_name)
    with open(md, "w") as f:
        f.write(text)
    with open(js, "w") as f:
        json.dump(raw, f, indent=1)
    print(text)
    log("written: %s, %s" % (md, js))
    return 0


def summary(r, kind):
    if "error" in r:
        return "error: %s" % r["error"][-200:]
    if kind in ("ws", "lp"):
        return ("%s/%s deliveries %.0f/s p50 %.1fms p99 %.1fms srv %.3f+%.3f "
                "us/dlv loadgen %.0f%%" % (
                    r["delivered"], r["expected"], r["deliveries_per_s"],
                    r["lat_p50_us"] / 1000, r["lat_p99_us"] / 1000,
                    r["srv_user_us_per_delivery"], r["srv_sys_us_per_delivery"],
                    r["own_cpu_pct"]))
    if kind == "idle":
        return "%d ready, RSS/conn %.0f B (anon %.0f B)" % (
            r["subs_ready"], r["rss_per_conn_b"], r["anon_per_conn_b"])
    return "%.0f publishes/s, %.2f us CPU/publish, loadgen %.0f%%" % (
        r["pubs_per_s"], r["srv_cpu_us_per_pub"], r["own_cpu_pct"])


if __name__ == "__main__":
    sys.exit(main())
