"""`python -m example_flask`: the example on an embedded Redis (or CACHEKIT_REDIS_URL)."""

from __future__ import annotations

import logging
import os
import sys

from cachekit_web.embedded import EmbeddedRedis, control_on_signals, free_port, stop_on_signals

from . import create_app


def main() -> int:
    """Start Redis if needed, then the development server; stop Redis on exit."""
    # Ctrl-C or SIGTERM (a supervisor, `timeout`), once or repeatedly, must still stop the
    # embedded Redis and remove its directory.
    stop_on_signals()
    # Every log line (requests, cachekit's warnings) starts with its time.
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = None
    control: list[str] = []
    try:
        url = os.environ.get("CACHEKIT_REDIS_URL")
        config: dict[str, object] = {}
        if not url:
            server = EmbeddedRedis()
            server.start()
            url = server.url
            assert server.proc is not None
            control = control_on_signals(server)
            config["EXAMPLE_REDIS_STOP"] = f"kill -USR1 {os.getpid()}"
            config["EXAMPLE_REDIS_START"] = f"kill -USR2 {os.getpid()}"
            print(f"embedded redis-server on {url} (pid {server.proc.pid})")
        host = os.environ.get("HOST", "127.0.0.1")
        # A free port unless PORT is set, so a busy 5000 (another app, AirPlay) is no failure.
        port = int(os.environ.get("PORT") or free_port())
        app = create_app({"CACHEKIT_REDIS_URL": url, **config})
        base = f"http://{host}:{port}"
        print(f"example_flask on {base}/  (slow view {base}/slow, "
              f"dashboard {base}/_cachekit/health/)")
        for line in control:
            print(line)
        sys.stdout.flush()
        app.run(host=host, port=port, debug=False, use_reloader=False)
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
