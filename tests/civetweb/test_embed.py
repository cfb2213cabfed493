"""The embedding example (civetweb_plugin/examples/embed.c): pushq attached
to an application's own CivetWeb context, and the C publish API
(pushq_civetweb_publish) reaching long-poll and WebSocket subscribers."""

import asyncio
import signal
import subprocess

import pytest
import requests
import websockets

from clients import new_channel
from conftest import EMBED, check_log
from servers.civetweb import free_port


@pytest.fixture
def embed():
    port = free_port()
    p = subprocess.Popen([EMBED, str(port)], stderr=subprocess.PIPE,
                         text=True)
    line = p.stderr.readline()
    assert "listening" in line, line
    yield "http://127.0.0.1:%d" % port, port
    p.send_signal(signal.SIGTERM)
    assert p.wait(15) == 0
    check_log(p.stderr.read())


def test_c_publish_api_reaches_websocket_and_longpoll(embed):
    base, port = embed
    ch = new_channel("app")

    async def run():
        async with websockets.connect(
                "ws://127.0.0.1:%d/sub?channel=%s" % (port, ch),
                ping_interval=None) as ws:
            for _ in range(100):
                st = requests.get(base + "/status", params={"channel": ch})
                if st.status_code == 200 and st.json()["subscribers"] == 1:
                    break
                await asyncio.sleep(0.05)
            r = requests.get(base + "/app/notify",
                             params={"channel": ch, "text": "server event"})
            assert r.status_code == 200, r.text
            assert r.json() == {"published": 1}
            r = requests.get(base + "/app/notify",
                             params={"channel": ch, "text": "second"})
            assert r.json() == {"published": 2}
            return [await asyncio.wait_for(ws.recv(), 3) for _ in range(2)]
    assert asyncio.run(run()) == ["server event", "second"]

    # the same messages for a cursor long-poll, and in the counters
    r = requests.get(base + "/sub", params={"channel": ch, "last_id": 0,
                                            "batch": 10, "timeout": 0})
    j = r.json()
    assert [m["msg"] for m in j["msgs"]] == ["server event", "second"], j
    st = requests.get(base + "/status").json()
    assert st["published"] >= 2


def test_c_publish_api_refuses_bad_channel(embed):
    base, _ = embed
    r = requests.get(base + "/app/notify",
                     params={"channel": "no/such", "text": "x"})
    assert r.status_code == 400
    assert "channel" in r.text


def test_http_publish_and_longpoll_on_embedded_server(embed):
    base, _ = embed
    ch = new_channel("app")
    r = requests.post(base + "/pub", params={"channel": ch},
                      data={"content": "from a form"})
    assert r.json()["id"] == 1, r.text
    j = requests.get(base + "/sub", params={"channel": ch, "last_id": 0,
                                            "timeout": 0}).json()
    assert j["msg"] == "from a form" and j["id"] == 1, j
