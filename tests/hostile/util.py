"""Helpers for the hostile-input suite: raw HTTP on a socket, server
memory, status."""

import json
import os
import socket
import struct
import time


def _one_complete(out):
    if b"\r\n\r\n" not in out:
        return False
    head, rest = out.split(b"\r\n\r\n", 1)
    for ln in head.split(b"\r\n")[1:]:
        k, _, v = ln.partition(b":")
        if k.strip().lower() == b"content-length":
            return len(rest) >= int(v.strip())
    return False


# Under ASan (PUSHQ_SANITIZED=1, see nginx_module/build.mk) the quarantine
# makes RSS grow by design: memory comparisons are skipped there.
SANITIZED = os.environ.get("PUSHQ_SANITIZED") == "1"


def raw_http(srv, data, timeout=5.0, first_only=False):
    """Sends raw bytes; returns everything the server answers until it
    closes (or the timeout), as bytes."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass      # the server answered early and closed: read it
        out = b""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                d = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not d:
                break
            out += d
            if first_only and _one_complete(out):
                break
        return out
    finally:
        s.close()


def responses(data):
    """Splits raw HTTP/1.x answers: [(status, headers dict, body)]."""
    out = []
    while data.startswith(b"HTTP/"):
        if b"\r\n\r\n" not in data:
            break
        head, rest = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        h = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            h[k.strip().lower()] = v.strip()
        n = int(h.get("content-length", len(rest)))
        out.append((status, h, rest[:n]))
        data = rest[n:]
    return out


def request(method, target, headers=(), body=b"", close=True):
    h = [("Host", "127.0.0.1")] + list(headers)
    if body and not any(k.lower() in ("content-length", "transfer-encoding")
                        for k, _ in h):
        h.append(("Content-Length", str(len(body))))
    if close:
        h.append(("Connection", "close"))
    return (("%s %s HTTP/1.1\r\n" % (method, target)).encode("latin-1")
            + b"".join(("%s: %s\r\n" % kv).encode("latin-1") for kv in h)
            + b"\r\n" + body)


def get_json(srv, target, timeout=10.0):
    rs = responses(raw_http(srv, request("GET", target), timeout))
    assert rs, "no answer to GET %s" % target
    status, h, body = rs[0]
    return status, json.loads(body)


def stored(srv, ch):
    st, j = get_json(srv, "%s?channel=%s&last_id=0&batch=1000&timeout=0"
                     % (srv.sub, ch))
    assert st == 200, (st, j)
    return j.get("msgs", [])


def publish(srv, ch, body, ctype="text/plain"):
    rs = responses(raw_http(srv, request(
        "POST", "%s?channel=%s" % (srv.pub, ch),
        [("Content-Type", ctype)], body)))
    assert rs, "no answer to the publish"
    return rs[0]


def channel_status(srv, ch):
    st, j = get_json(srv, "%s?channel=%s" % (srv.status, ch))
    return j if st == 200 else None


def status(srv):
    st, j = get_json(srv, srv.status)
    assert st == 200, j
    return j


def wait_until(pred, timeout=5.0, interval=0.05):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(interval)


def wait_subscribers(srv, ch, n, timeout=10.0):
    def ok():
        j = channel_status(srv, ch)
        return j is not None and j.get("subscribers") == n
    return wait_until(ok, timeout)


def rss_kb(srv):
    """Resident memory of the server's processes (nginx: the workers;
    CivetWeb: the process), in kB."""
    total = 0
    for pid in srv.pids():
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def fd_count(srv):
    import os
    n = 0
    for pid in srv.pids():
        try:
            n += len(os.listdir("/proc/%d/fd" % pid))
        except OSError:
            pass
    return n


def rst_close(sock):
    """Closes with a TCP RST (SO_LINGER 0) instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()
