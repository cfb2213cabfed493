"""`make demo`'s script: it serves examples/chat/ with the pushq
locations, prints the URL, and Ctrl-C (SIGINT) stops nginx and removes its
prefix."""

import os
import signal
import subprocess
import tempfile
import time

import requests

from servers import nginx


def test_demo_serves_chat_and_ctrl_c_leaves_nothing():
    port = nginx.free_port()
    prefix = os.path.join(tempfile.mkdtemp(prefix="pushq-demo-test-"),
                          "demo")
    root = os.path.join(nginx.ROOT, "examples", "chat")
    p = subprocess.Popen(
        ["bash", os.path.join(nginx.ROOT, "nginx_module", "demo.sh"),
         nginx.MODULE, root, prefix, str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    base = "http://127.0.0.1:%d" % port
    try:
        line = b""
        deadline = time.monotonic() + 20
        while b"http://127.0.0.1:%d/" % port not in line:
            assert time.monotonic() < deadline and p.poll() is None, line
            line = p.stdout.readline()
        r = requests.get(base + "/", timeout=5)
        assert r.status_code == 200
        with open(os.path.join(root, "index.html"), "rb") as f:
            assert r.content == f.read()
        r = requests.post(base + "/send_msg/", data={"content": "hi demo"},
                          timeout=5)
        assert r.status_code == 200 and r.json()["status"] is True, r.text
        r = requests.get(base + "/get_msg/?name=t&last_id=0&timeout=0",
                         timeout=5)
        assert r.json()["msg"] == "hi demo", r.text
        assert requests.get(base + "/status", timeout=5).json()["published"]
        # Ctrl-C: the terminal signals the whole foreground group
        os.killpg(p.pid, signal.SIGINT)
        out = p.communicate(timeout=20)[0]
        assert b"demo: stopped" in out, out
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert not os.path.exists(prefix)
    os.rmdir(os.path.dirname(prefix))
    try:
        requests.get(base + "/", timeout=1)
        raise AssertionError("nginx still answers after Ctrl-C")
    except requests.ConnectionError:
        pass
