"""`pushq_redis <url>|off` under `nginx -t`: good URLs pass in http, server
and location; a bad one fails naming the directive, the value, what is
wrong and file:line; rediss:// (TLS) is refused with the reason.  No Redis
is needed: nothing connects at configuration time."""


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
        location /pub {{
            pushq_publisher;
{location}
        }}
        location /sub {{ pushq_subscriber; }}
    }}
}}
"""


def nginx_t(http="", server="", location=""):
    """nginx -t on the config: (exit code, output, config path)."""
    return nginx.check_config(TEMPLATE.format(
        module=nginx.MODULE, port=nginx.free_port(), http=http,
        server=server, location=location))


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1",
    "redis://127.0.0.1:6390",
    "redis://localhost:6379/3",
    "redis://:s3cret@127.0.0.1:6379/0",
    "redis://user:s3cret@127.0.0.1",
    "redis://[::1]:6379",
])
def test_good_url_passes(url):
    rc, out, _ = nginx_t(http="    pushq_redis %s;" % url)
    assert rc == 0, out
    assert "test is successful" in out


def test_every_level_and_off():
    """http, server and location, several URLs (some the same Redis),
    and `off` turning it off again in one location."""
    rc, out, _ = nginx_t(
        http="    pushq_redis redis://127.0.0.1:6379;",
        server="        pushq_redis redis://127.0.0.1:6380/1;",
        location="            pushq_redis off;")
    assert rc == 0, out
    rc, out, _ = nginx_t(
        http="    pushq_redis redis://127.0.0.1:6379;",
        location="            pushq_redis redis://127.0.0.1:6379/0;")
    assert rc == 0, out


@pytest.mark.parametrize("url, part", [
    ("http://127.0.0.1:6379", "redis://"),
    ("127.0.0.1:6379", "redis://"),
    ("redis://127.0.0.1:0", "port"),
    ("redis://127.0.0.1:65536", "port"),
    ("redis://127.0.0.1:6379x", "port"),
    ("redis://127.0.0.1:6379/abc", "db"),
    ("redis://", "host"),
    ("redis://ho$t:6379", "host"),
])
def test_bad_url_fails_naming_the_part(url, part):
    rc, out, path = nginx_t(location="            pushq_redis %s;" % url)
    assert rc != 0, out
    assert "[emerg]" in out, out
    assert 'invalid URL "%s" in "pushq_redis" directive' % url in out, out
    assert part in out.split("directive:", 1)[1], out
    assert path + ":" in out, out     # file:line


def test_rediss_is_refused_with_the_reason():
    url = "rediss://127.0.0.1:6380"
    rc, out, _ = nginx_t(http="    pushq_redis %s;" % url)
    assert rc != 0, out
    assert 'invalid URL "%s" in "pushq_redis" directive' % url in out, out
    assert "TLS" in out and "hiredis" in out, out


def test_duplicate_in_one_scope_fails():
    rc, out, _ = nginx_t(location="            pushq_redis off;\n"
                                  "            pushq_redis redis://127.0.0.1;")
    assert rc != 0, out
    assert '"pushq_redis" directive is duplicate' in out, out


def test_wrong_number_of_arguments_fails():
    rc, out, _ = nginx_t(http="    pushq_redis;")
    assert rc != 0, out
    assert 'invalid number of arguments in "pushq_redis" directive' in out, \
        out


def test_unresolvable_host_fails_at_configuration_time():
    """A worker never resolves (hiredis would block): nginx -t does."""
    url = "redis://no-such-host.invalid:6379"
    rc, out, _ = nginx_t(http="    pushq_redis %s;" % url)
    assert rc != 0, out
    assert 'cannot resolve host "no-such-host.invalid" of "%s" in ' \
           '"pushq_redis" directive' % url in out, out


def test_example_configuration_passes():
    """nginx_module/examples/pushq-redis.conf, with the module's path, a
    private prefix and a free port, passes nginx -t (no Redis needed)."""
    text = nginx.example_config("pushq-redis.conf")
    assert "pushq_redis" in text
    rc, out, _ = nginx.check_config(text)
    assert rc == 0 and "test is successful" in out, out
