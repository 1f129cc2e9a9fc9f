"""Forking from tests without hanging the run.

A fork done in C (as uWSGI's master does) copies only the calling thread: a lock held by
another thread at that instant is held forever in the child. So a test that forks in C
does it in a fresh Python process of its own (``run_script``), never in pytest's process
and its threads; and every wait on a child has a deadline (``reap``).
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def c_fork() -> int:
    """fork() through libc, no Python fork hook run; the GIL stays held across the call
    (PyDLL), so no other thread can own it in the child."""
    return int(ctypes.PyDLL(None).fork())


def reap(pid: int, timeout: float = 30.0) -> int:
    """The exit code of child ``pid``; killed and AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)  # SIGKILL cannot be ignored: this returns
            raise AssertionError(f"child {pid} still running after {timeout} s: killed")
        time.sleep(0.01)


def in_c_forked_child(child: Callable[[], bytes], timeout: float = 30.0) -> bytes:
    """Run ``child`` in a process forked by libc (as uWSGI forks its workers: no Python
    fork hook runs) and return the bytes it returned. For scripts run by ``run_script``."""
    read_fd, write_fd = os.pipe()
    pid = c_fork()
    if pid == 0:
        try:
            os.write(write_fd, child())
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], timeout)
        return os.read(read_fd, 4096) if ready else b""
    finally:
        os.close(read_fd)
        reap(pid, timeout)


def run_script(code: str, *args: str, timeout: float = 120.0) -> str:
    """Run ``code`` in a new Python process (the repository importable); its stdout.

    Fails the test when the script fails or runs longer than ``timeout`` seconds."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout
