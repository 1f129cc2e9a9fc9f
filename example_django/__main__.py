"""`python -m example_django`: migrate, then serve the example on an embedded Redis.

An embedded redis-server is started unless CACHEKIT_REDIS_URL is set. A demo
superuser ("admin") is created with a random password, printed once.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from cachekit_web.embedded import (
        EmbeddedRedis,
        control_on_signals,
        free_port,
        stop_on_signals,
    )

    # Ctrl-C or SIGTERM (a process manager), once or repeatedly, must still stop the
    # embedded redis-server and remove its directory.
    stop_on_signals()
    server = None
    control: list[str] = []
    try:
        if not os.environ.get("CACHEKIT_REDIS_URL"):
            server = EmbeddedRedis()
            server.start()
            assert server.proc is not None
            os.environ["CACHEKIT_REDIS_URL"] = server.url
            control = control_on_signals(server)
            os.environ["EXAMPLE_REDIS_STOP"] = f"kill -USR1 {os.getpid()}"
            os.environ["EXAMPLE_REDIS_START"] = f"kill -USR2 {os.getpid()}"
            print(f"started an embedded redis-server on 127.0.0.1:{server.port} "
                  f"(pid {server.proc.pid})", flush=True)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_django.settings")
        import django
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        django.setup()
        Path(settings.DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        chosen = os.environ.get("EXAMPLE_ADMIN_PASSWORD")
        password = chosen or secrets.token_urlsafe(12)
        users = get_user_model()
        admin_user = users.objects.filter(username="admin").first()
        if admin_user is None:
            users.objects.create_superuser("admin", "admin@example.invalid", password)
            login = f"admin / {password}"
        elif chosen:  # lets a returning user who lost the printed password back in
            admin_user.set_password(chosen)
            admin_user.save()
            login = "admin / the EXAMPLE_ADMIN_PASSWORD you set"
        else:
            login = ("admin (existing user, password unchanged; run with "
                     "EXAMPLE_ADMIN_PASSWORD=... to reset it)")
        port = int(argv[0]) if argv else int(os.environ.get("PORT") or free_port())
        print(f"example_django running at http://127.0.0.1:{port}/", flush=True)
        print(f"  slow cached page: http://127.0.0.1:{port}/slow/", flush=True)
        print(f"  cache health:     http://127.0.0.1:{port}/admin/cachekit/health/ "
              f"(log in as {login})", flush=True)
        for line in control:
            print(line, flush=True)
        call_command("runserver", f"127.0.0.1:{port}", use_reloader=False, verbosity=1)
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
