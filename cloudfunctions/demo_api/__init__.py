"""The local demo API of development: httpbin and a real OAuth 2.0 token endpoint over TLS.

``manage.py demo_api`` (started by scripts/run when DEBUG is true) serves it on loopback with
gunicorn, under a development CA of its own; settings trust that CA and admit that one host
and port in development only, so a newcomer's first Test succeeds without a network.
"""

from __future__ import annotations

# Development credentials of the demo API: the seeded connections carry the same values.
# Nothing outside a developer's machine accepts them.
DEMO_API_KEY_NAME = "x-api-key"
DEMO_API_KEY = "demo-key-not-a-real-secret"
DEMO_CLIENT_ID = "demo-client"
DEMO_CLIENT_SECRET = "demo-client-secret-not-a-real-secret"
DEMO_SCOPES = ("charges:write", "notifications:write")
# Short-lived, so a demo shows a token being fetched again.
DEMO_TOKEN_SECONDS = 300
