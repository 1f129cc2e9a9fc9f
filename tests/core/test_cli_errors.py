"""Error codes: the registry, `cachekit-web explain`, docs drift, doctor, usage/config errors."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cachekit_web import (
    CacheClient,
    ClientClosedError,
    ConfigurationError,
    InvalidKeyError,
    SerializationError,
    Settings,
    ValueTooLargeError,
)
from cachekit_web.cli import explain, main
from cachekit_web.core.errors import REGISTRY, all_codes, markdown_table
from cachekit_web.embedded import free_port

from .conftest import KEY_A, MakeClient

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "cachekit_web.cli"]
SEED_CODES = ["E001", "E002", "E003", "E010", "E011", "E012", "E020", "E021", "E030", "E040",
              "E041", "E050", "E060", "E061", "E062", "E063", "E064", "E065"]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("CACHEKIT_", "CACHE_")) and k != "REDIS_URL"}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    script = ROOT / ".venv" / "bin" / "cachekit-web"
    cmd = [str(script), *args] if script.exists() else [*CLI, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=_clean_env(),
                          cwd=ROOT, check=False)


@pytest.mark.parametrize("code", SEED_CODES)
def test_explain_every_seed_code(code: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", code.lower()]) == 0
    out = capsys.readouterr().out
    spec = REGISTRY[code]
    assert out.startswith(f"{code}: {spec.title}")
    assert spec.fix in out and all(c in out for c in spec.causes)


def test_explain_cli_subprocess() -> None:
    done = run_cli("explain", "E003")
    assert done.returncode == 0 and "failed authentication" in done.stdout
    listing = run_cli("explain", "--list")
    assert listing.returncode == 0
    listed = [line.split()[0] for line in listing.stdout.splitlines() if line.strip()]
    assert listed == list(REGISTRY) and set(SEED_CODES) <= set(listed)
    unknown = run_cli("explain", "E999")
    assert unknown.returncode == 2 and "unknown code" in unknown.stdout


def test_docs_errors_md_matches_registry() -> None:
    done = run_cli("explain", "--markdown")
    assert done.returncode == 0
    docs = (ROOT / "docs" / "errors.md").read_text()
    assert docs == done.stdout, "docs/errors.md is stale: run `make docs`"
    assert docs == markdown_table()
    for code in all_codes():
        assert f"## {code}: " in docs


def test_registry_entries_are_complete() -> None:
    for code, spec in REGISTRY.items():
        assert code == spec.code and len(code) == 4 and code[0] == "E"
        assert spec.title and spec.causes and spec.fix and spec.category
    buf = io.StringIO()
    assert explain(None, list_all=True, out=buf) == 0
    assert len(buf.getvalue().splitlines()) == len(REGISTRY)


def test_doctor_ok_against_test_server(redis_url: str) -> None:
    done = run_cli("doctor", redis_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all checks passed" in done.stdout and "PING" in done.stdout


def test_doctor_fails_on_closed_port() -> None:
    done = run_cli("doctor", f"redis://127.0.0.1:{free_port()}/0")
    assert done.returncode == 1
    assert "E010" in done.stdout and "FAIL" in done.stdout
    assert "1 check(s) failed" in done.stdout and "Traceback" not in done.stderr


def test_doctor_without_url_reports_e040() -> None:
    done = run_cli("doctor")
    assert done.returncode == 1 and "E040" in done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    assert "skip  round trip" in done.stdout


def test_doctor_with_bad_key_reports_e002(redis_url: str) -> None:
    env = {**_clean_env(), "CACHEKIT_MASTER_KEY": "not-hex"}
    done = subprocess.run([*CLI, "doctor", redis_url], capture_output=True, text=True,
                          timeout=60, env=env, cwd=ROOT, check=False)
    assert done.returncode == 1 and "E002" in done.stdout and "Traceback" not in done.stderr
    assert "not-hex" not in done.stdout


# -- configuration errors ---------------------------------------------------------------

def test_e040_no_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(ConfigurationError) as info:
        CacheClient.from_url()
    assert info.value.code == "E040" and isinstance(info.value, ValueError)


def test_e041_typos_and_wrong_prefixes() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"CACHEKIT_REDIS_ULR": "redis://x"})
    assert info.value.code == "E041" and "CACHEKIT_REDIS_URL" in str(info.value)
    # a wrong prefix in the environment is a warning (tests/core/test_settings_problems.py)
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({"SOCKET_TIMOUT": 1})
    assert info.value.code == "E041" and "did you mean SOCKET_TIMEOUT" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        CacheClient.from_url("memory://", MASTERKEY=KEY_A)
    assert info.value.code == "E041" and "MASTER_KEY" in str(info.value)
    assert KEY_A not in str(info.value)
    # adapter-specific names are accepted when declared
    Settings.from_mapping({"HEALTH_TOKEN": "x"}, extra_names=["HEALTH_TOKEN"])


@pytest.mark.parametrize("values", [
    {"SOCKET_TIMEOUT": -1}, {"SOCKET_TIMEOUT": "abc"}, {"CONNECTION_POOL_SIZE": 0},
    {"RETRIES": 9}, {"NAMESPACE": "a:b"}, {"NAMESPACE": ""}, {"ENCRYPTION": "maybe"},
    {"STRICT": None},
])
def test_e042_bad_values(values: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping(values)
    assert info.value.code == "E042"


def test_e042_bad_env_value() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"CACHEKIT_CONNECTION_POOL_SIZE": "many"})
    assert info.value.code == "E042"


def test_e001_required_encryption_without_key() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({"ENCRYPTION": "required"})
    assert info.value.code == "E001" and isinstance(info.value, ValueError)
    Settings.from_mapping({"ENCRYPTION": "required", "MASTER_KEY": KEY_A})


@pytest.mark.parametrize("key", ["zz" * 32, "ab" * 16, f"'{KEY_A}'"])
def test_e002_malformed_master_key(key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({"MASTER_KEY": key})
    assert info.value.code == "E002" and key not in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        CacheClient.from_url("memory://", MASTER_KEY=key)
    assert info.value.code == "E002"
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({"MASTER_KEY": KEY_A, "PREVIOUS_MASTER_KEYS": [key]})
    assert info.value.code == "E002"


def test_master_key_whitespace_is_tolerated() -> None:
    client = CacheClient.from_url("memory://ws", MASTER_KEY=f"  {KEY_A}\n")
    assert client.codec.keyring.encrypted


# -- usage errors raised in every mode ---------------------------------------------------

def test_e020_unserializable_without_keys(make_client: MakeClient) -> None:
    client = make_client()
    with pytest.raises(SerializationError) as info:
        client.set("k", object())
    assert info.value.code == "E020" and isinstance(info.value, TypeError)
    with pytest.raises(SerializationError):
        client.set_many({"a": 1, "b": object()})
    assert client.get("a") is None  # nothing half-written
    with pytest.raises(SerializationError):
        client.get_or_set("g", object)
    sealed = make_client(SIGNING_KEY="test-signing-secret")  # with a key, pickle is the fallback
    assert sealed.set("k", Exception("x")) is True


def test_e022_value_too_large(make_client: MakeClient) -> None:
    client = make_client(MAX_VALUE_SIZE=1000)
    with pytest.raises(ValueTooLargeError) as info:
        client.set("k", os.urandom(2000))
    assert info.value.code == "E022" and isinstance(info.value, ValueError)
    assert client.set("small", b"x" * 100) is True
    # the limit is on the serialized size, so no reader ever inflates more than it
    with pytest.raises(ValueTooLargeError):
        client.set("compressible", b"x" * 50_000)
    assert client.set("compressible", b"x" * 990) is True
    assert client.get("compressible") == b"x" * 990


@pytest.mark.parametrize("key", ["", 123, None, b"bytes", "x" * 1025])
def test_e023_invalid_key(make_client: MakeClient, key: object) -> None:
    client = make_client()
    for call in (lambda: client.get(key), lambda: client.set(key, 1),  # type: ignore[arg-type]
                 lambda: client.delete(key)):  # type: ignore[arg-type]
        with pytest.raises(InvalidKeyError) as info:
            call()
        assert info.value.code == "E023" and isinstance(info.value, ValueError)


def test_e068_use_after_close(make_client: MakeClient) -> None:
    client = make_client()
    client.close()
    for call in (lambda: client.get("k"), lambda: client.set("k", 1), client.health,
                 lambda: client.get_or_set("k", lambda: 1)):
        with pytest.raises(ClientClosedError) as info:
            call()
        assert info.value.code == "E068" and isinstance(info.value, RuntimeError)
    client.close()  # idempotent


def test_errors_pickle_round_trip() -> None:
    import pickle

    exc = ConfigurationError("boom", code="E041")
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is ConfigurationError and back.code == "E041" and back.message == "boom"


def test_doctor_never_prints_the_password() -> None:
    from cachekit_web.embedded import EmbeddedRedis

    with EmbeddedRedis(password="doctor-pw-123") as server:
        ok = run_cli("doctor", server.url)
        bad = run_cli("doctor", server.url.replace("doctor-pw-123", "wrong-pw-456"))
    assert ok.returncode == 0, ok.stdout
    assert bad.returncode == 1 and "E060" in bad.stdout
    for done in (ok, bad):
        assert "doctor-pw-123" not in done.stdout + done.stderr
        assert "wrong-pw-456" not in done.stdout + done.stderr


@pytest.mark.parametrize("word", ["ture", "maybe", "enabled?"])
def test_e042_unrecognized_boolean(word: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"CACHEKIT_STRICT": word})
    assert info.value.code == "E042"
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({"STRICT": word})
    assert info.value.code == "E042"


@pytest.mark.parametrize(("word", "expected"), [("1", True), ("Yes", True), ("on", True),
                                                ("0", False), ("no", False), ("off", False),
                                                ("false", False), ("TRUE", True)])
def test_boolean_words(word: str, expected: bool) -> None:
    assert Settings.from_env({"CACHEKIT_STRICT": word}).STRICT is expected
    assert Settings.from_mapping({"STRICT": word}).STRICT is expected
