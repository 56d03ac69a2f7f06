"""TLS for the peer endpoint, trusted by pinning, not by certificate authorities.

Envelopes are already signed and encrypted end to end (PROTOCOL §5); TLS adds what they cannot
hide from an on-path observer: document kinds and sizes inside one stream are no longer visible
per request, nor are the HTTP paths and headers. Authentication stays where it was: in the
envelopes. TLS is server-authenticated only; the peer endpoint accepts any TLS client, and it is
the envelope signature that says who is talking.

Each home has one self-signed certificate for its peer endpoint (ECDSA P-256: every OpenSSL
build negotiates it in TLS 1.3), made here with ``cryptography``'s x509:

    HOME/tls/cert.pem   the certificate (public; its SHA-256 is what the peer pins)
    HOME/tls/key.pem    its private key, PKCS#8 PEM, mode 0600, refused when others can read it

The peer pins the SHA-256 of the certificate's DER bytes (``bridge peer add --tls-fingerprint``,
the value that ``bridge keys show`` prints, the same as ``openssl x509 -noout -fingerprint
-sha256``). The delivery loop checks that pin on every connection (``aiohttp.Fingerprint``) and
checks neither a CA chain, a host name nor the validity dates: the pin is the whole trust.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

from bridge.core.crypto.hashes import sha256
from bridge.core.errors import InputError, UsageError
from bridge.home.files import write_file
from bridge.home.key_files import check_private_file_mode

CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"
# The pin is the trust, so expiry is never checked; a long validity keeps other TLS tools
# (openssl s_client, curl -k) from complaining about an "expired" certificate.
VALIDITY_DAYS = 20 * 365
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")


@dataclass(frozen=True, kw_only=True)
class TlsFiles:
    cert: Path
    key: Path

    @classmethod
    def of(cls, folder: Path) -> TlsFiles:
        return cls(cert=folder / CERT_NAME, key=folder / KEY_NAME)

    def exist(self) -> bool:
        return self.cert.exists() and self.key.exists()


def normalise_tls_fingerprint(text: str, *, field: str = "tls_fingerprint") -> str:
    """A SHA-256 fingerprint typed in any of the usual ways (``AB:CD:…``, ``abcd …``,
    ``SHA256:…`` or ``sha256 Fingerprint=…`` as openssl prints it) as 64 lower-case hex
    digits."""
    cleaned = text.strip()
    for prefix in ("sha256 fingerprint=", "sha256:", "sha256="):
        if cleaned.lower().startswith(prefix):
            cleaned = cleaned[len(prefix):]
            break
    hexed = re.sub(r"[\s:-]", "", cleaned).lower()
    if not _HEX64.match(hexed):
        raise InputError("a TLS certificate fingerprint is the SHA-256 of the certificate: 64 "
                         "hexadecimal digits (colons and spaces allowed)", field=field)
    return hexed


def format_tls_fingerprint(hexed: str) -> str:
    """``AB:CD:…``, upper case, as ``openssl x509 -fingerprint -sha256`` prints it."""
    up = hexed.upper()
    return ":".join(up[i : i + 2] for i in range(0, len(up), 2))


def cert_fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the certificate's DER bytes, 64 lower-case hex digits."""
    # x509 is imported where a certificate is read or made: the configuration checks a pinned
    # fingerprint with this module, and every command that reads bridge.toml imports it.
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise UsageError(f"not a PEM certificate: {exc}") from exc
    return sha256(cert.public_bytes(serialization.Encoding.DER)).hex()


def file_fingerprint(files: TlsFiles) -> str:
    try:
        data = files.cert.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read TLS certificate {files.cert}: {exc.strerror}; create "
                         "one with: bridge tls init") from exc
    return cert_fingerprint(data)


def create_certificate(folder: Path, party: str, *, now: datetime.datetime | None = None
                       ) -> str:
    """Make the key (mode 0600 from birth) and the self-signed certificate; return the
    certificate's fingerprint. Never overwrites: a changed certificate must be re-pinned by the
    peer, so replacing one is a deliberate act (move the old files away first)."""
    files = TlsFiles.of(folder)
    if files.cert.exists() or files.key.exists():
        raise UsageError(f"{folder} already holds a TLS certificate or key; refusing to "
                         "overwrite it (the peer has pinned it)")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    when = now or datetime.datetime.now(datetime.UTC)
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, f"bridge peer endpoint {party}"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bridge"),
    ])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(when - datetime.timedelta(days=1))
        .not_valid_after(when + datetime.timedelta(days=VALIDITY_DAYS))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    write_file(files.key, key_pem)  # 0600, and never over an existing key
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    write_file(files.cert, cert_pem)
    return cert_fingerprint(cert_pem)


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """The peer endpoint's context: TLS 1.3 only (both ends are Bridge), no client
    certificates (the envelopes authenticate the sender)."""
    if not files.exist():
        raise UsageError(f"TLS is enabled but {files.cert} or {files.key} is missing; create "
                         "them with: bridge tls init")
    check_private_file_mode(files.key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        ctx.load_cert_chain(str(files.cert), str(files.key))
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(f"cannot load the TLS certificate and key from {files.cert.parent}: "
                         f"{exc}") from exc
    return ctx


def check_peer_transport(name: str, url: str, tls_fingerprint: str | None) -> None:
    """An https:// peer must have a pinned certificate, and a pin needs https://: aiohttp skips
    a fingerprint check on a plain connection, so a pin with http:// would silently do
    nothing."""
    https = url.lower().startswith("https://")
    if https and not tls_fingerprint:
        raise UsageError(
            f"peer {name}: {url} is https but no TLS certificate fingerprint is pinned; ask the "
            "peer for theirs (bridge keys show), compare it out of band, then run: bridge peer "
            f"add FILE --url {url} --fingerprint FP --tls-fingerprint SHA256")
    if tls_fingerprint and not https:
        raise UsageError(
            f"peer {name}: a TLS certificate fingerprint is pinned but the URL {url} is not "
            "https://; the pin would not be checked. Use the https:// URL of the peer.")
    if tls_fingerprint:
        normalise_tls_fingerprint(tls_fingerprint)


__all__ = [
    "TlsFiles", "cert_fingerprint", "check_peer_transport", "create_certificate",
    "file_fingerprint", "format_tls_fingerprint", "normalise_tls_fingerprint",
    "server_context",
]
