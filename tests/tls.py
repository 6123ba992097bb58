"""A TLS front for a plain-HTTP simulator, with a certificate trusted or not.

`TlsFront` listens on https://127.0.0.1:<port> and passes each connection on to
a simulator. Its certificate is signed by a test authority that `trust_test_ca`
adds to Home Assistant's client SSL context; `distrust()` makes it present a
self-signed certificate instead (and drops the open connections, which a client
would otherwise keep using), so the client's TLS handshake fails as it does
behind a proxy with a wrong certificate.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import ipaddress
from pathlib import Path
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from yarl import URL

LOCALHOST = "127.0.0.1"
BUFFER = 65536


@dataclass(frozen=True, slots=True)
class Certificates:
    """A test authority, and server contexts with a certificate it signed or not."""

    ca_pem: str
    trusted: ssl.SSLContext
    untrusted: ssl.SSLContext

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts the test authority only (HTTP/1.1)."""
        context = ssl.create_default_context(cadata=self.ca_pem)
        context.set_alpn_protocols(["http/1.1"])
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Wide: Home Assistant's frozen clock may be far from the real one.
        .not_valid_before(now - timedelta(days=3650))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        # Python's default client context verifies strictly (X.509 v3 key ids).
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(LOCALHOST))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _server_context(
    directory: Path, name: str, certificate: x509.Certificate, key: bytes
) -> ssl.SSLContext:
    cert_file = directory / f"{name}.crt"
    key_file = directory / f"{name}.key"
    cert_file.write_bytes(_pem(certificate))
    key_file.write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


def make_certificates(directory: Path) -> Certificates:
    """A test authority and two certificates for 127.0.0.1 (files in `directory`)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("EV Cloud test CA", ca_key, "EV Cloud test CA", ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    signed = _certificate(LOCALHOST, key, "EV Cloud test CA", ca_key, ca=False)
    stranger = _certificate(LOCALHOST, key, LOCALHOST, key, ca=False)
    return Certificates(
        ca_pem=_pem(ca).decode(),
        trusted=_server_context(directory, "trusted", signed, _key_pem(key)),
        untrusted=_server_context(directory, "untrusted", stranger, _key_pem(key)),
    )


class TlsFront:
    """https://127.0.0.1:<port> in front of a plain-HTTP server at `target`."""

    def __init__(self, target: str, certificates: Certificates) -> None:
        """Pass connections on to `target` (`http://host:port`)."""
        url = URL(target)
        assert url.host is not None
        assert url.port is not None
        self._target = (url.host, url.port)
        self._certificates = certificates
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.trusted = True
        self.handshakes_failed = 0

    @property
    def url(self) -> str:
        """The front's root, e.g. `https://127.0.0.1:40125`."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"https://{LOCALHOST}:{port}"

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._serve, LOCALHOST, 0)

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        self._drop_connections()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._server = None

    def distrust(self) -> None:
        """Present a certificate no one trusts, to new connections and old ones."""
        self.trusted = False
        self._drop_connections()

    def trust(self) -> None:
        """Present the trusted certificate again."""
        self.trusted = True

    def _drop_connections(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._writers.add(writer)
        context = (
            self._certificates.trusted if self.trusted else self._certificates.untrusted
        )
        try:
            await writer.start_tls(context)
            upstream_reader, upstream_writer = await asyncio.open_connection(
                *self._target
            )
        except OSError:  # ssl.SSLError too: the client refused the certificate
            self.handshakes_failed += 1
            self._writers.discard(writer)
            writer.close()
            return
        self._writers.add(upstream_writer)
        try:
            await asyncio.gather(
                _pipe(reader, upstream_writer),
                _pipe(upstream_reader, writer),
            )
        finally:
            for side in (writer, upstream_writer):
                self._writers.discard(side)
                side.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until either side ends."""
    try:
        while data := await reader.read(BUFFER):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
