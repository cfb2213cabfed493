"""pushq_civetweb_attach's options and pushq-civetweb's configuration file:
a bad option is refused with a sentence naming it (attach returns NULL),
a bad configuration line makes the program exit with status 2 naming
FILE:LINE."""

import os
import subprocess

import pytest

from conftest import ATTACH_CHECK, PROGRAM, ROOT
from servers.civetweb import free_port


def attach(*args, ping_pong=False):
    cmd = [ATTACH_CHECK, str(free_port())]
    if ping_pong:
        cmd.append("--ping-pong")
    cmd += list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    return r.returncode, r.stdout.strip()


def test_attach_good_options_attaches_and_detaches():
    rc, out = attach("publisher_uri", "/p", "subscriber_uri", "/s,/t",
                     "status_uri", "/st", "subscriber", "longpoll,websocket",
                     "store_size", "2m", "buffer", "10", "buffer_bytes", "64k",
                     "message_ttl", "90s", "client_ttl", "5m",
                     "longpoll_timeout", "500ms", "max_message_size", "1k",
                     "websocket_publish", "off", "websocket_ping", "10s",
                     "websocket_max_backlog", "1m", "channel", "$arg_room",
                     "client", "$arg_user")
    assert (rc, out) == (0, "attached")


@pytest.mark.parametrize("name,value,says", [
    ("bogus", "1", "bogus"),
    ("buffer", "abc", "buffer"),
    ("buffer", "0", "buffer"),
    ("buffer_bytes", "12q", "buffer_bytes"),
    ("store_size", "1k", "store_size"),
    ("message_ttl", "5x", "message_ttl"),
    ("client_ttl", "-1", "client_ttl"),
    ("longpoll_timeout", "soon", "longpoll_timeout"),
    ("max_message_size", "big", "max_message_size"),
    ("websocket_publish", "maybe", "websocket_publish"),
    ("websocket_ping", "x", "websocket_ping"),
    ("websocket_max_backlog", "1z", "websocket_max_backlog"),
    ("subscriber", "sse", "subscriber"),
    ("subscriber_uri", "sub", "subscriber_uri"),
    ("channel", "bad/name", "channel"),
    ("client", "$", "client"),
])
def test_attach_bad_option_null_with_error_naming_it(name, value, says):
    rc, out = attach("publisher_uri", "/p", name, value)
    assert rc == 1, out
    assert out.startswith("error: ") and says in out, out
    if name != "bogus":
        assert value in out, ("the error quotes the value", out)


def test_attach_same_uri_twice_refused():
    rc, out = attach("publisher_uri", "/x", "subscriber_uri", "/x")
    assert rc == 1 and "subscriber_uri" in out and "/x" in out, out


def test_attach_no_location_refused():
    rc, out = attach("buffer", "10")
    assert rc == 1 and "publisher_uri" in out, out


def test_attach_refuses_civetweb_ping_pong():
    rc, out = attach("subscriber_uri", "/s", ping_pong=True)
    assert rc == 1 and "enable_websocket_ping_pong" in out, out


# --- pushq-civetweb ----------------------------------------------------------

def run_program(tmp_path, text, *extra):
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    r = subprocess.run([PROGRAM, *extra, str(conf)], capture_output=True,
                       text=True, timeout=20)
    return r.returncode, r.stderr, str(conf)


GOOD = ("# a comment\n"
        "\n"
        "listening_ports 127.0.0.1:%d\n"
        "num_threads 8\n"
        "publisher_uri /pub\n")


@pytest.mark.parametrize("line,says", [
    ("no_such_option 1", "no_such_option"),
    ("buffer many", "buffer"),
    ("longpoll_timeout 3 days", "longpoll_timeout"),
    ("subscriber_uri", "subscriber_uri"),           # no value
    ("num_threads lots", "num_threads"),             # CivetWeb option
    ("enable_keep_alive perhaps", "enable_keep_alive"),
    ("enable_websocket_ping_pong yes", "enable_websocket_ping_pong"),
    ("publisher_uri /again", "publisher_uri"),       # set twice
])
def test_program_bad_line_exit_2_naming_file_line(tmp_path, line, says):
    rc, err, conf = run_program(tmp_path, GOOD % free_port() + line + "\n")
    assert rc == 2, (rc, err)
    assert "%s:6:" % conf in err, err
    assert says in err, err


def test_program_civetweb_start_error_names_line(tmp_path):
    # a port already taken: CivetWeb cannot bind; the listening_ports line
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        text = GOOD % s.getsockname()[1]
        rc, err, conf = run_program(tmp_path, text)
    finally:
        s.close()
    assert rc == 2, (rc, err)
    assert "%s:3:" % conf in err, err


def test_program_dash_c_and_missing_file(tmp_path):
    rc = subprocess.run([PROGRAM, "-c", str(tmp_path / "none.conf")],
                        capture_output=True, text=True, timeout=10)
    assert rc.returncode == 2 and "none.conf" in rc.stderr, rc.stderr
    rc = subprocess.run([PROGRAM], capture_output=True, text=True, timeout=10)
    assert rc.returncode == 2 and "usage" in rc.stderr, rc.stderr


def test_program_help_explains():
    r = subprocess.run([PROGRAM, "--help"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0
    for word in ("CONFIG", "num_threads", "publisher_uri", "subscriber_uri",
                 "status_uri", "store_size", "longpoll_timeout",
                 "websocket_max_backlog", "stderr", "SIGTERM"):
        assert word in r.stdout, word


def test_default_config_is_valid_and_holds_1000_subscribers():
    conf = os.path.join(ROOT, "civetweb_plugin", "pushq-civetweb.conf")
    opts = {}
    with open(conf) as f:
        for ln in f:
            ln = ln.strip()
            if ln and not ln.startswith("#"):
                k, _, v = ln.partition(" ")
                opts[k] = v.strip()
    assert int(opts["num_threads"]) >= 1000 + 50
    assert "/send_msg/" in opts["publisher_uri"]
    assert "/get_msg/" in opts["subscriber_uri"]
    assert "/pub" in opts["publisher_uri"] and "/sub" in opts["subscriber_uri"]
    assert opts["status_uri"] == "/status"
    assert opts["document_root"].rstrip("/").endswith("examples/chat")


def test_cpp_wrapper_on_civetserver():
    """pushq_civetweb.hpp: attach on a CivetServer, a bad option throws
    naming it, publish returns ids, a bad channel throws."""
    from conftest import OUT
    prog = os.path.join(OUT, "tests", "civetweb_wrapper_check")
    r = subprocess.run([prog, str(free_port())], capture_output=True,
                       text=True, timeout=20)
    assert (r.returncode, r.stdout.strip()) == (0, "ok"), (r.stdout, r.stderr)


def test_default_config_serves_the_chat(tmp_path):
    """civetweb_plugin/pushq-civetweb.conf as shipped (on a free port):
    1,100 threads start, the chat page and pushq's endpoints answer."""
    import signal
    import time
    import requests
    src = os.path.join(ROOT, "civetweb_plugin", "pushq-civetweb.conf")
    port = free_port()
    lines = []
    with open(src) as f:
        for ln in f:
            if ln.startswith("listening_ports"):
                ln = "listening_ports 127.0.0.1:%d\n" % port
            lines.append(ln)
    conf = tmp_path / "default.conf"
    conf.write_text("".join(lines))
    log = open(tmp_path / "log", "w+")
    p = subprocess.Popen([PROGRAM, str(conf)], cwd=ROOT, stderr=log)
    try:
        base = "http://127.0.0.1:%d" % port
        for _ in range(200):
            log.seek(0)
            if "listening on port" in log.read():
                break
            time.sleep(0.05)
        r = requests.get(base + "/", timeout=5)
        assert r.status_code == 200 and "<html" in r.text.lower(), r.text[:200]
        r = requests.post(base + "/send_msg/", data={"content": "hi"},
                          timeout=5)
        assert r.json()["status"] is True, r.text
        r = requests.get(base + "/status", timeout=5)
        assert r.json()["published"] == 1, r.text
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0
        log.seek(0)
        text = log.read()
        log.close()
    assert "1100 threads" in text, text
