"""Launcher: Debian's nginx with the pushq module, from a private prefix.

    srv = nginx.start(workers=4, longpoll_timeout="2s", buffer=10)
    ...  srv.base, srv.pub, srv.sub, srv.status, srv.seed_pub, srv.seed_sub
    srv.reload(); srv.pids(); srv.log_text()
    srv.stop()                      # or: with nginx.start() as srv: ...

Settings are the pushq directives without "pushq_", with the directive's
value syntax ("30s", "64k", "on"); "subscriber" goes on the subscriber
locations (/sub and /get_msg/), everything else at http level (so
redis="redis://127.0.0.1:6379" writes `pushq_redis redis://...;` there).  Extra
nginx configuration (nginx tests only): http_extra, server_extra (text) and
location_extra ({"/sub": "deny all;"}).

Every start gets a fresh prefix (a temporary directory: config, logs, temp
paths) and a free loopback port (`listen 127.0.0.1:PORT reuseport`, so
that fresh connections spread over the workers).  stop() removes the
prefix unless FAILED is set (tests/nginx/conftest.py sets it when a test
fails) or PUSHQ_KEEP=1 is in the environment.

PUSHQ_NGINX_WRAPPER (environment, shlex syntax) puts a command in front of
nginx, e.g. "valgrind --tool=memcheck ..." (tests/valgrind/valgrind.mk).
nginx forks its workers without exec, so they run under it too.  With a
wrapper the process titles ("nginx: worker process") cannot be read, so
every live child of the master counts as a worker except those a reload()
retired; worker_rlimit_nofile is left out (valgrind refuses setrlimit on
RLIMIT_NOFILE).  PUSHQ_TIME_FACTOR (default 1) multiplies the launcher's
own waits (start, reload, stop) for slow wrappers.
"""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from . import free_port  # noqa: F401  (servers.<kind>.free_port)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..",
                                    ".."))
MODULE = os.environ.get("PUSHQ_NGINX_MODULE") or os.path.join(
    ROOT, "build", "out", "ngx_http_pushq_module.so")
NGINX = os.environ.get("PUSHQ_NGINX", "/usr/sbin/nginx")
WRAPPER = shlex.split(os.environ.get("PUSHQ_NGINX_WRAPPER", ""))
TIME_FACTOR = float(os.environ.get("PUSHQ_TIME_FACTOR") or 1)

# Set by a test harness when a test failed: stop() then keeps the prefix.
FAILED = False

DIRECTIVES = (
    "shm_size", "buffer", "buffer_bytes", "message_ttl", "client_ttl",
    "longpoll_timeout", "max_message_size", "websocket_publish",
    "websocket_ping", "websocket_max_backlog", "subscriber", "channel",
    "client", "redis",
)

_SIZE = re.compile(r"^(\d+)([kKmMgG]?)$")


def parse_size(value):
    """nginx size syntax ("64k", "1m", "100") -> bytes."""
    m = _SIZE.match(str(value).strip())
    if not m:
        raise ValueError("not an nginx size: %r" % (value,))
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(m.group(1)) * mult[m.group(2).lower()]


def check_config(text):
    """nginx -t on `text`, from a private prefix with logs/ and tmp/ (the
    config's relative paths resolve there); returns (exit code, output,
    the config file's path, removed by then)."""
    d = tempfile.mkdtemp(prefix="pushq-nginx-t-")
    try:
        for sub in ("logs", "tmp"):
            os.makedirs(os.path.join(d, sub))
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([NGINX, "-t", "-p", d + "/", "-c", path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        return p.returncode, p.stdout.decode("utf-8", "replace"), path
    finally:
        shutil.rmtree(d, ignore_errors=True)


def example_config(name):
    """nginx_module/examples/<name>, made to run from a private prefix
    (check_config): this build's module, pid and logs in the prefix, a free
    loopback port, no access log, temporary files in the prefix."""
    with open(os.path.join(ROOT, "nginx_module", "examples", name)) as f:
        text = f.read()
    text = text.replace("load_module modules/ngx_http_pushq_module.so;",
                        "load_module %s;\npid logs/nginx.pid;\n"
                        "error_log logs/error.log;" % MODULE)
    text = re.sub(r"listen 80( reuseport)?;",
                  "listen 127.0.0.1:%d;" % free_port(), text)
    return text.replace("http {", "http {\n    access_log off; "
                        "client_body_temp_path tmp/b; proxy_temp_path tmp/p; "
                        "fastcgi_temp_path tmp/f; uwsgi_temp_path tmp/u; "
                        "scgi_temp_path tmp/s;", 1)


def _ppid_and_cmd(pid, zombies=False):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return None, ""
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        if not zombies:
            return None, ""
        cmd = "<zombie>"
    return int(fields[1]), cmd.strip()


def _children(pid, zombies=False):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        ppid, cmd = _ppid_and_cmd(int(d), zombies)
        if ppid == pid:
            out.append((int(d), cmd))
    return out


def render_config(port, workers, settings, http_extra="", server_extra="",
                  location_extra=None):
    location_extra = dict(location_extra or {})
    settings = dict(settings)
    subscriber = settings.pop("subscriber", None)
    unknown = [k for k in settings if k not in DIRECTIVES]
    if unknown:
        raise ValueError("unknown pushq setting(s): %s" % ", ".join(unknown))

    # A form body encodes each byte in up to 3 ("%XX"): nginx must accept
    # a body that large, or it refuses with its own 413 first.
    max_msg = parse_size(settings.get("max_message_size", "64k"))
    body_max = max(1 << 20, 3 * max_msg + 65536)

    http = []
    for key, value in settings.items():
        http.append("    pushq_%s %s;" % (key, value))

    sub = "pushq_subscriber%s;" % ((" " + subscriber) if subscriber else "")

    def loc(path, body):
        extra = location_extra.pop(path, "")
        return ("        location = %s {\n            %s\n            %s\n"
                "        }\n" % (path, body, extra))

    locations = (loc("/pub", "pushq_publisher;")
                 + loc("/sub", sub)
                 + loc("/status", "pushq_status;")
                 + loc("/send_msg/", "pushq_publisher;")
                 + loc("/get_msg/", sub))
    for path, body in location_extra.items():
        locations += ("        location %s {\n            %s\n        }\n"
                      % (path, body))

    rlimit = "" if WRAPPER else "worker_rlimit_nofile 16384;\n"
    return """# generated by tests/integration/servers/nginx.py
user root;
worker_processes %(workers)d;
%(rlimit)spid logs/nginx.pid;
error_log logs/error.log info;
load_module %(module)s;

events {
    worker_connections 4096;
}

http {
    access_log logs/access.log;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    client_max_body_size %(body_max)d;
    default_type application/octet-stream;

%(http)s
%(http_extra)s

    server {
        listen 127.0.0.1:%(port)d reuseport;
        server_name localhost;
%(server_extra)s

%(locations)s
    }
}
""" % {"workers": workers, "module": MODULE, "body_max": body_max,
       "http": "\n".join(http), "http_extra": http_extra, "port": port,
       "server_extra": server_extra, "locations": locations,
       "rlimit": rlimit}


class Server:
    kind = "nginx"
    pub = "/pub"
    sub = "/sub"
    status = "/status"
    seed_pub = "/send_msg/"
    seed_sub = "/get_msg/"

    def __init__(self, workers, settings, http_extra="", server_extra="",
                 location_extra=None):
        self.workers = workers
        self.settings = dict(settings)
        self.prefix = tempfile.mkdtemp(prefix="pushq-nginx-")
        self.port = None
        self.base = None
        self.proc = None
        self.keep = False
        self._final_log = ""
        self._extra = (http_extra, server_extra, location_extra)
        self._retired = set()   # with a wrapper: workers a reload replaced
        for d in ("logs", "tmp"):
            os.makedirs(os.path.join(self.prefix, d))

    # -- paths -------------------------------------------------------------

    @property
    def conf_path(self):
        return os.path.join(self.prefix, "nginx.conf")

    @property
    def error_log(self):
        return os.path.join(self.prefix, "logs", "error.log")

    @property
    def pid_file(self):
        return os.path.join(self.prefix, "logs", "nginx.pid")

    def log_text(self):
        """The error log's contents so far (kept after stop())."""
        try:
            with open(self.error_log, encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return self._final_log

    def master_pid(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return self.proc.pid if self.proc else None

    # -- processes ---------------------------------------------------------

    def _workers(self, include_exiting=False):
        pid = self.master_pid()
        if pid is None:
            return []
        out = []
        for child, cmd in _children(pid):
            if WRAPPER:
                if include_exiting or child not in self._retired:
                    out.append(child)
                continue
            if "worker process" not in cmd:
                continue
            if "shutting down" in cmd and not include_exiting:
                continue
            out.append(child)
        return sorted(out)

    def pids(self):
        """The pids of the current (not exiting) worker processes."""
        return self._workers()

    def _start(self):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        http_extra, server_extra, location_extra = self._extra
        with open(self.conf_path, "w") as f:
            f.write(render_config(self.port, self.workers, self.settings,
                                  http_extra, server_extra, location_extra))
        out = open(os.path.join(self.prefix, "logs", "stderr.log"), "ab")
        self.proc = subprocess.Popen(
            WRAPPER + [NGINX, "-p", self.prefix + "/", "-c", self.conf_path,
             "-g", "daemon off;"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            cwd=self.prefix)
        out.close()
        deadline = time.monotonic() + 15 * TIME_FACTOR
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self._answers() and len(self.pids()) == self.workers:
                return True
            time.sleep(0.05)
        raise RuntimeError("nginx did not start in %d s; log:\n"
                           % (15 * TIME_FACTOR)
                           + self.log_text()[-3000:])

    def _answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port),
                                          timeout=0.5):
                return True
        except OSError:
            return False

    def start(self):
        for _ in range(3):
            if self._start():
                return self
            text = self.log_text() + self._stderr()
            if "Address already in use" not in text:
                raise RuntimeError("nginx failed to start:\n" + text[-3000:])
        raise RuntimeError("nginx failed to start (ports busy):\n"
                           + self.log_text()[-3000:])

    def _stderr(self):
        try:
            with open(os.path.join(self.prefix, "logs", "stderr.log"),
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def reload(self, timeout=15):
        """HUP the master; returns once a full set of new workers runs
        (the old ones may still be finishing)."""
        old = set(self._workers(include_exiting=True))
        if WRAPPER:
            self._retired |= old
        os.kill(self.master_pid(), signal.SIGHUP)
        timeout *= TIME_FACTOR
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.pids()
            if len(now) == self.workers and not (set(now) & old):
                return self
            time.sleep(0.05)
        raise RuntimeError("reload: new workers did not start in %d s; "
                           "log:\n%s" % (timeout, self.log_text()[-3000:]))

    def wait_old_workers_gone(self, timeout=15):
        """After reload(): waits until no worker is shutting down and the
        master has reaped every exited one."""
        deadline = time.monotonic() + timeout * TIME_FACTOR
        while time.monotonic() < deadline:
            zombies = [c for c in _children(self.master_pid(), True)
                       if c[1] == "<zombie>"]
            if (len(self._workers(include_exiting=True)) == self.workers
                    and not zombies):
                return True
            time.sleep(0.05)
        return False

    def stop(self, timeout=15):
        """QUIT the master (graceful), wait, remove the prefix."""
        if self.proc is None:
            return
        timeout *= TIME_FACTOR
        pid = self.master_pid()
        try:
            if self.proc.poll() is None and pid:
                os.kill(pid, signal.SIGQUIT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        finally:
            self.proc = None
            self._final_log = self.log_text()
            if not (FAILED or self.keep or os.environ.get("PUSHQ_KEEP")):
                shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            self.keep = True
        self.stop()
        return False

    def __repr__(self):
        return "<nginx workers=%d %s prefix=%s>" % (self.workers, self.base,
                                                    self.prefix)


def start(workers=1, http_extra="", server_extra="", location_extra=None,
          **settings):
    """Starts nginx with the module; returns once the port answers and all
    workers run."""
    srv = Server(workers, settings, http_extra, server_extra, location_extra)
    try:
        return srv.start()
    except Exception:
        srv.keep = True
        srv.stop()
        raise
