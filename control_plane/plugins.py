"""The composition root: each domain declares what it brings in one `Domain` (a Litestar init
plugin), and the kernel knows the domains only through `DOMAIN_PLUGINS`, a list of module names.

A domain's plugin module (``tenants/plugin.py``, ``billing/plugin.py``, ``sla/plugin.py``,
``compliance/plugin.py``) exposes ``DOMAIN``: its routes (added to the app by `on_app_init`), its
periodic jobs, its outbox handlers, its ``bpoctl`` commands and its readiness checks. The app
factory, the scheduler, the outbox runner's job and the CLI loop over `domains()`; none of them
imports a domain module (import-linter keeps it so for these modules).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import click
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.plugins import InitPluginProtocol

from control_plane.database import Databases
from control_plane.periodic import Job, JobContext

# The plugin list: the one place the kernel names the domains (imported by name, at start).
DOMAIN_PLUGINS: tuple[str, ...] = (
    "tenants.plugin",
    "billing.plugin",
    "sla.plugin",
    "compliance.plugin",
    "webhooks.plugin",
)

# The kernel's own outbox handlers, by kind -> "module:factory" (imported by name when the handlers are
# made, as the domains are, so that no kernel module imports the modules that import the plugins).
KERNEL_OUTBOX_HANDLERS: dict[str, str] = {"mail": "control_plane.mail:mail_handler"}

ReadinessCheck = Callable[[State], Awaitable[tuple[str, str]]]
HandlerFactory = Callable[[JobContext], Any]  # ctx -> async handler(payload, idempotency_key)


@dataclass(frozen=True)
class NavLink:
    """A page in the navigation: in the header (``Domain.nav``) or a tenant's tabs (``Domain.tenant_tabs``,
    where ``{slug}`` in ``href`` names the tenant). ``roles``: who sees the link (the page's own guard
    decides who may open it); ``order`` places it among every domain's links."""

    key: str
    label: str
    href: str
    roles: frozenset[str]
    order: int = 50


@dataclass(frozen=True, eq=False)  # hashed by identity: Litestar keeps plugins in a set
class Domain(InitPluginProtocol):
    name: str
    routes: Sequence[Any] = ()
    jobs: Mapping[str, tuple[int, Job]] = field(default_factory=dict)  # name -> (seconds between runs, job)
    outbox_handlers: Mapping[str, HandlerFactory] = field(default_factory=dict)  # outbox kind -> factory
    commands: Sequence[click.Command] = ()  # added to ``bpoctl``
    readiness: Sequence[ReadinessCheck] = ()  # more checks of ``/ready``: (name, "ok" | reason)
    # Run in the background when a server or worker with the scheduler starts; each logs its own failure.
    on_start: Sequence[Callable[[Databases], Awaitable[object]]] = ()
    # Ports the kernel calls without importing a domain (one domain provides each):
    audit_log: Callable[..., Awaitable[Any]] | None = None  # append_audit_entry(session, *, stream, actor, ...)
    tenant_directory: Any = None  # id_of(session, slug), slug_of(session, tenant_id)
    # Credentials by secret prefix: resolve(session, prefix, digest, now) -> (Principal | None, row | None).
    credentials: Mapping[str, Callable[..., Awaitable[tuple[Any, Any]]]] = field(default_factory=dict)
    # Key rotation (``bpoctl keys rotate``): re-seal under the active key, say which key ids are in use,
    # and rotate what a domain keys itself (returning what the audit entry records).
    resealers: Sequence[Callable[[Any, Any], Awaitable[int]]] = ()
    key_ids_in_use: Sequence[Callable[[Any], Awaitable[set[str]]]] = ()
    key_rotation: Sequence[Callable[[Any, Any], Awaitable[dict[str, Any]]]] = ()
    demo_seeders: Sequence[Callable[[Any], Awaitable[None]]] = ()  # in domain order, given the DemoContext
    # The OpenAPI document (control_plane.openapi): "METHOD /path" -> the model its body is parsed with,
    # and "METHOD /path" -> {status: content types} for answers that are not plain JSON ([] = redirect).
    request_bodies: Mapping[str, Any] = field(default_factory=dict)
    answers: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)
    nav: Sequence[NavLink] = ()  # header links
    tenant_tabs: Sequence[NavLink] = ()  # the tabs of a tenant's pages
    # Events (control_plane.events.publish): each subscriber is awaited in the publisher's transaction
    # as ``subscriber(session, event)`` and enqueues what it sends (webhook deliveries, e-mails).
    event_subscribers: Sequence[Callable[..., Awaitable[None]]] = ()
    # E-mail attachments by kind (control_plane.mail): ``kind -> async (db, ref) -> (filename, type, bytes)``,
    # read when the message is sent, so the outbox row holds a reference, not the document.
    mail_attachments: Mapping[str, Callable[..., Awaitable[tuple[str, str, bytes]]]] = field(default_factory=dict)
    # Gauges read at scrape time by ``/metrics`` (control_plane.metrics): ``async (db) -> [Reading, ...]``.
    metrics: Sequence[Callable[[Databases], Awaitable[Sequence[Any]]]] = ()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.extend(self.routes)
        return app_config


@functools.cache
def domains() -> tuple[Domain, ...]:
    return tuple(importlib.import_module(name).DOMAIN for name in DOMAIN_PLUGINS)


def periodic_jobs() -> dict[str, tuple[int, Job]]:
    return {name: job for d in domains() for name, job in d.jobs.items()}


def outbox_handlers(ctx: JobContext) -> dict[str, Any]:
    """The handler of every outbox kind (the kernel's and every domain's), made for ``ctx``."""
    kernel = {}
    for kind, target in KERNEL_OUTBOX_HANDLERS.items():
        module, _, attr = target.partition(":")
        kernel[kind] = getattr(importlib.import_module(module), attr)(ctx)
    return kernel | {kind: factory(ctx) for d in domains() for kind, factory in d.outbox_handlers.items()}


def readiness_checks() -> list[ReadinessCheck]:
    return [check for d in domains() for check in d.readiness]


def _provided(port: str) -> Any:
    found = [getattr(d, port) for d in domains() if getattr(d, port) is not None]
    if len(found) != 1:
        raise LookupError(f"{len(found)} domains provide {port!r}; exactly one must")
    return found[0]


def audit_log() -> Callable[..., Awaitable[Any]]:
    """The audit log's append (the compliance domain's)."""
    return _provided("audit_log")


def tenant_directory() -> Any:
    """Tenant ids and slugs (the tenants domain's)."""
    return _provided("tenant_directory")


def credential_resolver(secret_prefix: str) -> Callable[..., Awaitable[tuple[Any, Any]]] | None:
    for d in domains():
        for start, resolve in d.credentials.items():
            if secret_prefix.startswith(start):
                return resolve
    return None


def event_subscribers() -> list[Callable[..., Awaitable[None]]]:
    return [s for d in domains() for s in d.event_subscribers]


def metric_readers() -> list[Callable[[Databases], Awaitable[Sequence[Any]]]]:
    return [r for d in domains() for r in d.metrics]


def mail_attachment(kind: str) -> Callable[..., Awaitable[tuple[str, str, bytes]]]:
    for d in domains():
        if kind in d.mail_attachments:
            return d.mail_attachments[kind]
    raise LookupError(f"no domain provides the mail attachment {kind!r}")


def nav_links(role: str, extra: Sequence[NavLink] = ()) -> list[NavLink]:
    """The header links ``role`` sees, in order (``extra``: the kernel's own)."""
    links = [*extra, *(n for d in domains() for n in d.nav)]
    return sorted((n for n in links if role in n.roles), key=lambda n: n.order)


def tenant_tabs(role: str, extra: Sequence[NavLink] = ()) -> list[NavLink]:
    links = [*extra, *(n for d in domains() for n in d.tenant_tabs)]
    return sorted((n for n in links if role in n.roles), key=lambda n: n.order)
