"""A real SMTP server on loopback (aiosmtpd, in its own thread) that records every message it accepts.

``server.stall_for = address`` makes the next DATA command to that address hang (until
``server.release`` is set) before the server answers 354, as a slow or stuck mail server does: the
client has sent MAIL FROM and RCPT TO and waits, so a worker killed then dies in the middle of the
SMTP transaction. ``server.stalled`` is set when that happens. Messages are parsed with the
``email`` package (``server.messages``); ``server.raw`` keeps the recipients and bytes.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Recorder:
    def __init__(self, server: FakeSMTP) -> None:
        self.server = server

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        with self.server.lock:
            self.server.raw.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK: queued"


class _StallingSMTP(SMTP):
    fake: FakeSMTP

    async def smtp_DATA(self, arg: str) -> None:
        if self.fake.stall_for in self.envelope.rcpt_tos:  # the next message to that address only
            self.fake.stall_for = None
            self.fake.stalled.set()
            await asyncio.to_thread(self.fake.release.wait)
        await super().smtp_DATA(arg)


class FakeSMTP:
    def __init__(self, **smtp_kwargs: Any) -> None:
        """``smtp_kwargs``: aiosmtpd's, e.g. ``tls_context=``, ``require_starttls=True``, ``authenticator=``."""
        self.lock = threading.Lock()
        self.raw: list[tuple[list[str], bytes]] = []
        self.stall_for: str | None = None
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.port = _free_port()
        fake = self

        class _Controller(Controller):
            def factory(self) -> SMTP:
                smtp = _StallingSMTP(self.handler, **self.SMTP_kwargs)
                smtp.fake = fake
                return smtp

        self.controller = _Controller(_Recorder(self), hostname="127.0.0.1", port=self.port, **smtp_kwargs)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [email.message_from_bytes(raw, policy=email.policy.default) for _, raw in self.raw]

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def start(self) -> FakeSMTP:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.controller.stop()


@pytest.fixture(name="smtp_server")
def smtp_server_fixture() -> Iterator[FakeSMTP]:
    """A running FakeSMTP (import ``smtp_server_fixture`` into a test module to use ``smtp_server``)."""
    server = FakeSMTP().start()
    try:
        yield server
    finally:
        server.stop()


def attachments(message: EmailMessage) -> list[tuple[str, str, Any]]:
    """``(filename, content type, bytes)`` of each attachment."""
    return [(p.get_filename(), p.get_content_type(), p.get_content()) for p in message.iter_attachments()]


def self_signed(directory: Path) -> tuple[Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1 (its PEM file, for a client to trust) and a server context using it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return cert_file, context
