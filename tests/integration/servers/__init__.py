"""Server launchers for the integration tests: nginx.py, civetweb.py."""

import socket


def free_port():
    """A loopback TCP port nobody listens on now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()
