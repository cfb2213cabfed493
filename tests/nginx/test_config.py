"""`nginx -t` with the module: good configurations pass, and every bad
directive value fails with a message naming the directive and file:line."""

import pytest

from servers import nginx

TEMPLATE = """load_module {module};
pid logs/nginx.pid;
error_log logs/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
{http}
    server {{
        listen 127.0.0.1:{port};
{server}
        location /pub {{ pushq_publisher; }}
        location /sub {{
            pushq_subscriber;
{location}
        }}
        location /status {{ pushq_status; }}
    }}
}}
"""


def nginx_t(http="", server="", location=""):
    """Runs nginx -t on the config; returns (exit code, output, path,
    the 1-based line number of the first line of http/server/location)."""
    text = TEMPLATE.format(module=nginx.MODULE, port=nginx.free_port(),
                           http=http, server=server, location=location)
    rc, out, path = nginx.check_config(text)
    lines = text.splitlines()
    marks = {}
    for key, value in (("http", http), ("server", server),
                       ("location", location)):
        if value.strip():
            first = value.strip().splitlines()[0].strip()
            marks[key] = next(i + 1 for i, l in enumerate(lines)
                              if l.strip() == first)
    return rc, out, path, marks


def test_good_config_with_every_directive_passes():
    rc, out, _, _ = nginx_t(
        http="""    pushq_shm_size 8m;
    pushq_buffer 10;
    pushq_buffer_bytes 1m;
    pushq_message_ttl 10m;
    pushq_client_ttl 30s;
    pushq_longpoll_timeout 20s;
    pushq_max_message_size 16k;
    pushq_websocket_publish off;
    pushq_websocket_ping 10s;
    pushq_websocket_max_backlog 256k;
    pushq_channel $arg_room;
    pushq_client $cookie_visitor;""",
        server="""        pushq_buffer 20;
        pushq_longpoll_timeout 5s;""",
        location="""            pushq_buffer 30;
            pushq_channel chat-$arg_room;
            pushq_websocket_publish on;""")
    assert rc == 0, out
    assert "test is successful" in out, out


@pytest.mark.parametrize("where,line,directive,message", [
    ("http", "pushq_shm_size lots;", "pushq_shm_size", "invalid value"),
    ("http", "pushq_shm_size 4k;", "pushq_shm_size", "too small"),
    ("http", "pushq_buffer 0;", "pushq_buffer", "must be between 1 and"),
    ("location", "pushq_buffer 4294967296;", "pushq_buffer",
     "must be between 1 and"),
    ("http", "pushq_buffer ten;", "pushq_buffer", "invalid number"),
    ("server", "pushq_buffer_bytes 1q;", "pushq_buffer_bytes",
     "invalid value"),
    ("location", "pushq_buffer_bytes 0;", "pushq_buffer_bytes",
     "must be more than 0"),
    ("http", "pushq_message_ttl forever;", "pushq_message_ttl",
     "invalid value"),
    ("location", "pushq_message_ttl 0s;", "pushq_message_ttl",
     "must be more than 0"),
    ("server", "pushq_client_ttl 5x;", "pushq_client_ttl", "invalid value"),
    ("http", "pushq_client_ttl 0;", "pushq_client_ttl",
     "must be more than 0"),
    ("location", "pushq_longpoll_timeout soon;", "pushq_longpoll_timeout",
     "invalid value"),
    ("http", "pushq_max_message_size big;", "pushq_max_message_size",
     "invalid value"),
    ("location", "pushq_websocket_publish maybe;",
     "pushq_websocket_publish", "it must be \"on\" or \"off\""),
    ("http", "pushq_websocket_ping often;", "pushq_websocket_ping",
     "invalid value"),
    ("server", "pushq_websocket_max_backlog huge;",
     "pushq_websocket_max_backlog", "invalid value"),
    ("location", "pushq_websocket_max_backlog 0;",
     "pushq_websocket_max_backlog", "must be more than 0"),
    ("location", "pushq_subscriber sse;", "pushq_subscriber",
     "\"longpoll\" and/or \"websocket\""),
    ("location", "pushq_publisher;", "pushq_publisher",
     "cannot be combined"),
    ("location", "pushq_status;", "pushq_status", "cannot be combined"),
    ("location", "pushq_subscriber longpoll;", "pushq_subscriber",
     "is duplicate"),
    ("location", "pushq_channel a b;", "pushq_channel",
     "invalid number of arguments"),
    ("location", "pushq_client;", "pushq_client",
     "invalid number of arguments"),
    ("location", "pushq_shm_size 64m;", "pushq_shm_size", "not allowed"),
    ("server", "pushq_publisher;", "pushq_publisher", "not allowed"),
    ("http", "pushq_status;", "pushq_status", "not allowed"),
    ("location", "pushq_buffer 10 20;", "pushq_buffer",
     "invalid number of arguments"),
])
def test_bad_value_names_directive_and_file_line(where, line, directive,
                                                 message):
    kw = {where: "        " + line}
    rc, out, path, marks = nginx_t(**kw)
    assert rc != 0, out
    emerg = [l for l in out.splitlines() if "[emerg]" in l]
    assert emerg, out
    text = emerg[0]
    assert directive in text, text
    assert message in text, text
    assert "%s:%d" % (path, marks[where]) in text, (text, marks)
    assert "test failed" in out, out


def test_example_configuration_passes():
    """nginx_module/examples/pushq.conf, with the module's path, a private
    prefix and a free port, passes nginx -t."""
    rc, out, _ = nginx.check_config(nginx.example_config("pushq.conf"))
    assert rc == 0 and "test is successful" in out, out
