"""Server launchers for the integration tests: nginx.py, civetweb.py."""
