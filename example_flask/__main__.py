"""`python -m example_flask`: the example on an embedded Redis (or CACHEKIT_REDIS_URL)."""

from __future__ import annotations

import os
import signal
import sys

from cachekit_web.embedded import EmbeddedRedis

from . import create_app


def main() -> int:
    """Start Redis if needed, then the development server; stop Redis on exit."""
    # SIGTERM (e.g. from `timeout` or a supervisor) must still stop the embedded Redis.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = None
    url = os.environ.get("CACHEKIT_REDIS_URL")
    if not url:
        server = EmbeddedRedis().start()
        url = server.url
        print(f"embedded redis-server on {url}")
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    app = create_app({"CACHEKIT_REDIS_URL": url})
    base = f"http://{host}:{port}"
    print(f"example_flask on {base}/  (slow view {base}/slow, dashboard {base}/_cachekit/health/)")
    sys.stdout.flush()
    try:
        app.run(host=host, port=port, debug=False, use_reloader=False)
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
