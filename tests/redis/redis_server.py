"""Launcher: Debian's redis-server for the Redis scale-out tests and bench.

    r = redis_server.start()        # free loopback port, no persistence
    r.url                           # "redis://127.0.0.1:PORT"
    r.cli("DBSIZE")                 # redis-cli against it -> str
    r.stop()                        # SIGTERM, wait (the port is free again)
    r.start()                       # again, on the same port (empty: no
                                    # persistence, as after a crash)
    r.kill()                        # SIGKILL (a crash)

Every instance runs from its own temporary directory (`--dir`), with
`--save '' --appendonly no` so that nothing is written to disk and a
restart begins empty, bound to 127.0.0.1 only.  stop()/kill() keep the
port: start() binds the same one again (retrying while the kernel still
holds it).  close() stops it for good and removes the directory.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
from servers import free_port  # noqa: E402

REDIS_SERVER = os.environ.get("PUSHQ_REDIS_SERVER", "/usr/bin/redis-server")
REDIS_CLI = os.environ.get("PUSHQ_REDIS_CLI", "/usr/bin/redis-cli")


class RedisServer:
    def __init__(self, port=None, password=None):
        self.port = port or free_port()
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="pushq-redis-")
        self.log = os.path.join(self.dir, "redis.log")
        self.proc = None

    @property
    def url(self):
        auth = (":%s@" % self.password) if self.password else ""
        return "redis://%s127.0.0.1:%d" % (auth, self.port)

    def _argv(self):
        argv = [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port),
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--logfile", self.log, "--daemonize", "no",
                "--protected-mode", "no", "--databases", "16",
                "--maxclients", "10000"]
        if self.password:
            argv += ["--requirepass", self.password]
        return argv

    def start(self, timeout=10):
        """Starts (again) on self.port; returns once it answers PING."""
        if self.running():
            return self
        deadline = time.monotonic() + timeout
        while True:
            self.proc = subprocess.Popen(self._argv(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL,
                                         cwd=self.dir)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break           # e.g. the port is still held: retry
                if self._ping():
                    return self
                time.sleep(0.02)
            if self.proc.poll() is None:
                self.kill()
                raise RuntimeError("redis-server did not answer on %d:\n%s"
                                   % (self.port, self.log_text()[-2000:]))
            if time.monotonic() >= deadline:
                raise RuntimeError("redis-server exited (%s) on port %d:\n%s"
                                   % (self.proc.returncode, self.port,
                                      self.log_text()[-2000:]))
            time.sleep(0.1)

    def _ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port),
                                          timeout=0.5) as s:
                cmd = b"PING\r\n"
                if self.password:
                    p = self.password.encode()
                    cmd = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(p), p) \
                        + cmd
                s.sendall(cmd)
                data = b""
                while b"PONG" not in data:
                    d = s.recv(256)
                    if not d:
                        return False
                    data += d
                return True
        except OSError:
            return False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def pid(self):
        return self.proc.pid if self.running() else None

    def stop(self, timeout=10):
        """SIGTERM (redis-server exits at once: nothing to save)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self):
        """SIGKILL: as a crash."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def restart(self, down_s=0.0):
        self.stop()
        if down_s:
            time.sleep(down_s)
        return self.start()

    def cli(self, *args, timeout=10):
        """redis-cli <args> against this server; its stdout (str)."""
        argv = [REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port)]
        if self.password:
            argv += ["--no-auth-warning", "-a", self.password]
        r = subprocess.run(argv + [str(a) for a in args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("redis-cli %s: %s" % (" ".join(map(str, args)),
                                                     r.stderr))
        return r.stdout.strip()

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def close(self, keep=False):
        self.stop()
        if not keep and os.environ.get("PUSHQ_KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(keep=exc[0] is not None)
        return False


def start(port=None, password=None):
    return RedisServer(port, password).start()


if __name__ == "__main__":     # a quick manual check
    with start() as r:
        print(r.url, r.cli("PING"))
        r.restart()
        print("restarted", r.cli("PING"))
