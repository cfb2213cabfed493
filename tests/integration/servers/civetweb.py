"""Launcher: build/out/pushq-civetweb (CivetWeb 1.15 with pushq attached).

    srv = civetweb.start(longpoll_timeout="2s", buffer=10)
    ...  srv.base, srv.pub, srv.sub, srv.status, srv.seed_pub, srv.seed_sub
    srv.pids(); srv.log_text()
    srv.stop()                      # or: with civetweb.start() as srv: ...

The same interface as servers/nginx.py.  Settings are pushq's option names
with nginx's value syntax ("30s", "64k", "on"); "shm_size" becomes the
plugin's "store_size", and "subscriber" ("longpoll websocket") its comma
list.  Any other key is written to the configuration as it is, so CivetWeb
options (num_threads, ...) can be given too, and redis="redis://host:port"
writes the plugin's `redis` option (Redis scale-out).  `workers` is ignored:
CivetWeb is one process.

Every start gets a fresh temporary directory (configuration and stderr
log) and a free loopback port, and returns once the port answers.  stop()
removes the directory unless FAILED is set or PUSHQ_KEEP=1.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from . import free_port  # noqa: F401  (servers.<kind>.free_port)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..",
                                    ".."))
PROGRAM = os.environ.get("PUSHQ_CIVETWEB",
                         os.path.join(ROOT, "build", "out", "pushq-civetweb"))
DOCROOT = os.path.join(ROOT, "examples", "chat")

# Set by a test harness when a test failed: stop() then keeps the prefix.
FAILED = False

# Enough threads for the tests' 200 long-polls + 200 WebSockets at once,
# plus publishers and status requests (each held connection holds one).
DEFAULT_THREADS = 600


def option_lines(settings):
    """settings (nginx names and syntax) -> pushq-civetweb config lines."""
    lines = []
    for key, value in settings.items():
        value = str(value)
        if key == "shm_size":
            key = "store_size"
        elif key == "subscriber":
            value = ",".join(value.replace(",", " ").split())
        lines.append("%s %s" % (key, value))
    return lines


class Server:
    kind = "civetweb"
    workers = 1
    pub = "/pub"
    sub = "/sub"
    status = "/status"
    seed_pub = "/send_msg/"
    seed_sub = "/get_msg/"

    def __init__(self, settings):
        self.settings = dict(settings)
        self.prefix = tempfile.mkdtemp(prefix="pushq-civetweb-")
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.conf = os.path.join(self.prefix, "pushq-civetweb.conf")
        self.log = os.path.join(self.prefix, "stderr.log")
        self.proc = None

        cw = {
            "listening_ports": "127.0.0.1:%d" % self.port,
            "num_threads": str(DEFAULT_THREADS),
            "listen_backlog": "1024",
            "connection_queue": "1024",
            "document_root": DOCROOT,
            "enable_keep_alive": "yes",
        }
        push = dict(self.settings)
        for k in list(push):
            if k in cw:
                cw[k] = str(push.pop(k))
        lines = ["# written by tests/integration/servers/civetweb.py"]
        lines += ["%s %s" % kv for kv in cw.items()]
        lines += [
            "publisher_uri %s,%s" % (self.pub, self.seed_pub),
            "subscriber_uri %s,%s" % (self.sub, self.seed_sub),
            "status_uri %s" % self.status,
        ]
        lines += option_lines(push)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([PROGRAM, self.conf], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log,
                                         cwd=self.prefix)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("pushq-civetweb exited with %s:\n%s"
                                   % (self.proc.returncode, self.log_text()))
            # the program logs this line once pushq is attached (CivetWeb
            # answers on the port a moment earlier)
            if "listening on port" in self.log_text():
                try:
                    socket.create_connection(("127.0.0.1", self.port),
                                             timeout=0.5).close()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("pushq-civetweb did not answer on port %d:\n%s"
                           % (self.port, self.log_text()))

    def log_text(self):
        try:
            with open(self.log, "r", encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def pids(self):
        return [self.proc.pid] if self.proc is not None else []

    def reload(self):
        raise NotImplementedError("pushq-civetweb has no reload; restart it")

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
        if not FAILED and os.environ.get("PUSHQ_KEEP") != "1":
            shutil.rmtree(self.prefix, ignore_errors=True)
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start(workers=1, **settings):
    """Starts pushq-civetweb with these settings; workers is ignored."""
    srv = Server(settings)
    srv._start()
    return srv
