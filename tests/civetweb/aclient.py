"""Small asyncio clients for many concurrent connections: raw HTTP/1.1
(one request per connection) and Python's websockets."""

import asyncio
import json


async def http(port, method, target, body=b"", headers=None, timeout=30):
    """One request on a fresh connection; returns (status, body bytes)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port), timeout)
    h = {"Host": "127.0.0.1:%d" % port, "Connection": "close",
         "Content-Length": str(len(body))}
    if headers:
        h.update(headers)
    req = "%s %s HTTP/1.1\r\n" % (method, target)
    req += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
    writer.write(req.encode("latin-1") + body)
    await writer.drain()
    try:
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = None
    for ln in head.split(b"\r\n")[1:]:
        k, _, v = ln.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    return status, rest[:length] if length is not None else rest


async def get_json(port, target, timeout=30):
    status, body = await http(port, "GET", target, timeout=timeout)
    assert status == 200, (status, body)
    return json.loads(body)


async def publish(port, channel, text, path="/pub"):
    status, body = await http(port, "POST", "%s?channel=%s" % (path, channel),
                              text.encode(), {"Content-Type": "text/plain"})
    assert status == 200, (status, body)
    return json.loads(body)


async def subscribers(port, channel):
    status, body = await http(port, "GET", "/status?channel=%s" % channel)
    if status != 200:
        return 0
    return json.loads(body)["subscribers"]


async def wait_subscribers(port, channel, n, timeout=10):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if await subscribers(port, channel) == n:
            return True
        await asyncio.sleep(0.05)
    return False
