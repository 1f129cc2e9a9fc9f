"""The `cachekit-web` command as a person meets it: lookup, help, colour, hints, messages."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from cachekit_web.cli import main
from cachekit_web.core.errors import REGISTRY, ConfigurationError
from cachekit_web.embedded import free_port
from cachekit_web.flask.config import check_config_names

ROOT = Path(__file__).resolve().parents[2]
ESC = "\x1b["


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CACHEKIT_", "CACHE_")) and k not in ("REDIS_URL", "NO_COLOR",
                                                                       "FORCE_COLOR")}
    env.update({"PYTHONPATH": str(ROOT), "TERM": "xterm", **extra})
    return env


def run_on_tty(*args: str, **env: str) -> str:
    """Run the CLI with stdout on a pseudo-terminal; return what it wrote there."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "cachekit_web.cli", *args], cwd=ROOT,
                                env=_env(**env), stdout=follower, stderr=subprocess.DEVNULL)
        os.close(follower)
        chunks: list[bytes] = []
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(30)
    finally:
        os.close(leader)
    return b"".join(chunks).decode()


@pytest.mark.parametrize("typed", ["e3", "E3", "3", "e03", "E003", " e003 "])
def test_explain_accepts_short_and_lowercase_codes(
        typed: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", typed]) == 0
    assert capsys.readouterr().out.startswith(f"E003: {REGISTRY['E003'].title}")


@pytest.mark.parametrize("typed", ["e9999", "x3", "E", "E0"])
def test_explain_still_refuses_unknown_codes(
        typed: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", typed]) == 2
    assert "unknown code" in capsys.readouterr().out


def test_help_hides_the_internal_readme_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "SUPPRESS" not in out and "readme" not in out
    assert "explain" in out and "doctor" in out


def test_colour_on_a_terminal_only() -> None:
    coloured = run_on_tty("explain", "E003")
    assert ESC in coloured and "E003" in coloured
    assert ESC not in run_on_tty("explain", "E003", NO_COLOR="1")
    assert ESC not in run_on_tty("explain", "E003", TERM="dumb")
    piped = subprocess.run([sys.executable, "-m", "cachekit_web.cli", "explain", "E003"],
                           cwd=ROOT, env=_env(), capture_output=True, text=True, check=True,
                           timeout=60)
    assert ESC not in piped.stdout and piped.stdout.startswith("E003: ")


def test_doctor_colours_its_verdicts_on_a_terminal() -> None:
    out = run_on_tty("doctor", "memory://")
    assert f"{ESC}32m" in out and "ok" in out  # green ok


def test_doctor_hint_names_the_url_it_used(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"  # nothing listens there
    assert main(["doctor", url]) == 1
    out = capsys.readouterr().out
    assert "[E010]" in out
    assert f"redis-cli -u 'redis://:***@127.0.0.1:{url.rsplit(':', 1)[1]}' ping" in out
    assert "$CACHEKIT_REDIS_URL" not in out and "hunter2" not in out


def test_fix_for_leaves_other_codes_alone() -> None:
    assert REGISTRY["E003"].fix_for("redis://h:1/0") == REGISTRY["E003"].fix
    assert "$CACHEKIT_REDIS_URL" in REGISTRY["E010"].fix  # the generated docs keep the name
    assert "`redis-cli -u redis://h:1/0 ping`" in REGISTRY["E010"].fix_for("redis://h:1/0")
    assert "-u 'redis://:***@h:1/0' ping" in REGISTRY["E010"].fix_for("redis://:***@h:1/0")


def test_flask_caching_advice_reads_as_english() -> None:
    with pytest.raises(ConfigurationError) as info:
        check_config_names({"CACHE_TYPE": "RedisCache", "CACHE_DIR": "/tmp/x",
                            "CACHE_REDIS_URL": "redis://h/0"})
    message = info.value.message
    assert "use remove" not in message
    assert "CACHE_TYPE is a Flask-Caching setting and is not read; remove it" in message
    assert "CACHE_REDIS_URL is a Flask-Caching setting and is not read; use CACHEKIT_REDIS_URL" \
        in message


def test_keygen_prints_a_new_master_key_each_time(capsys: pytest.CaptureFixture[str]) -> None:
    from cachekit_web.core.data.crypto import parse_master_key

    keys = []
    for _ in range(3):
        assert main(["keygen"]) == 0
        keys.append(capsys.readouterr().out)
    for out in keys:
        assert out.endswith("\n") and len(out.strip()) == 64
        parse_master_key(out.strip())  # E002 would raise
    assert len(set(keys)) == 3


def test_keygen_signing_prints_a_key_signing_key_accepts(
        capsys: pytest.CaptureFixture[str]) -> None:
    from cachekit_web import Settings

    assert main(["keygen", "--signing"]) == 0
    key = capsys.readouterr().out.strip()
    assert len(key) >= 32 and " " not in key
    assert key == Settings.from_mapping({"SIGNING_KEY": key}).SIGNING_KEY  # no E004


def test_every_key_instruction_names_keygen() -> None:
    from cachekit_web.django import checks

    for code in ("E001", "E002", "E004"):
        assert "cachekit-web keygen" in REGISTRY[code].fix, code
    texts = [(ROOT / "README.md").read_text(), Path(checks.__file__).read_text(),
             (ROOT / "docs" / "errors.md").read_text()]
    for text in texts:
        assert "doctor` prints" not in text and "doctor` prints a new one" not in text
        assert "openssl rand" not in text and "secrets.token_hex(32)" not in text


def test_install_hints_use_the_readme_line() -> None:
    from cachekit_web.core.errors import install_line

    assert install_line("flask") == "python -m pip install -e '.[flask]'"
    assert install_line("django") in (ROOT / "README.md").read_text()  # its Install section
    for path in [*(ROOT / "docs").glob("*.md"), *(ROOT / "cachekit_web").rglob("*.py")]:
        assert "pip install 'cachekit-web[" not in path.read_text(), path


def test_doctor_uses_the_right_article(capsys: pytest.CaptureFixture[str]) -> None:
    key = "".join(f"{i:02x}" for i in range(32))
    os.environ["CACHEKIT_MASTER_KEY"] = key
    try:
        assert main(["doctor", "memory://"]) == 0
    finally:
        del os.environ["CACHEKIT_MASTER_KEY"]
    out = capsys.readouterr().out
    assert "an encrypted value succeeded" in out and "a encrypted" not in out


def test_usage_error_does_not_list_the_hidden_readme_command() -> None:
    done = subprocess.run([sys.executable, "-m", "cachekit_web.cli", "nosuch"], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "invalid choice" in done.stderr and "doctor" in done.stderr
    assert "readme" not in done.stderr


def test_readme_command_still_works_for_make_docs(tmp_path: Path) -> None:
    from cachekit_web.cli import README_END, README_START

    target = tmp_path / "README.md"
    target.write_text(f"top\n{README_START}\nstale-row\n{README_END}\nbottom\n")
    assert main(["readme", str(target)]) == 0
    assert "| `REDIS_URL` |" in target.read_text() and "stale-row" not in target.read_text()


def test_explain_list_is_in_code_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--list"]) == 0
    codes = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert codes == sorted(codes) and "E003" in codes
