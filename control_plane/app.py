"""The Litestar application factory: wires settings, databases, the key ring, auth, routes and pages."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator
from pathlib import Path

from litestar import Litestar, Request
from litestar.config.cors import CORSConfig
from litestar.config.csrf import CSRFConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.middleware.session.client_side import CookieBackendConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane import account, key_pages, mail_pages, openapi, telemetry, users
from control_plane import controllers as cp
from control_plane.auth import AuthenticationMiddleware, Principal, authorize
from control_plane.bodies import BodyGuardMiddleware
from control_plane.database import Databases
from control_plane.errors import EXCEPTION_HANDLERS
from control_plane.keyring import KeyRing
from control_plane.keystore import open_ring_sync, start_watching, stop_watching
from control_plane.logging import RequestIdMiddleware, configure_logging
from control_plane.metrics import metrics_endpoint
from control_plane.navigation import TEMPLATE_CALLABLES
from control_plane.periodic import JobContext
from control_plane.plugins import domains
from control_plane.scheduler import Leader, build_scheduler
from control_plane.security_headers import security_headers
from control_plane.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIRS = [ROOT / d / "templates" for d in ("control_plane", "tenants", "billing", "sla", "compliance")]


def _session_secret(stored: bytes | None) -> bytes:
    """The cookie-session key: ``BPO_SESSION_SECRET`` (hex), else the one stored (sealed) in the control
    database, shared by every instance (``control_plane.keystore``)."""
    env = os.environ.get("BPO_SESSION_SECRET")
    if env:
        return bytes.fromhex(env)
    assert stored is not None
    return stored


async def provide_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    """The request's control-database session: committed when the handler succeeds."""
    session = state.db.control_session()
    try:
        yield session
        await session.commit()
    except Exception:
        await session.rollback()
        raise
    finally:
        await session.close()


def _register_template_callables(engine: JinjaTemplateEngine) -> None:
    for name, fn in TEMPLATE_CALLABLES.items():
        engine.register_template_callable(name, fn)


def provide_principal(request: Request) -> Principal | None:
    return request.scope.get("user")


def provide_settings(state: State) -> Settings:
    return state.settings


def provide_keyring(state: State) -> KeyRing:
    return state.keyring


def create_app(
    settings: Settings | None = None, *, db: Databases | None = None, run_scheduler: bool = False
) -> Litestar:

    settings = settings or load_settings()
    configure_logging()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    owns_db = db is None  # engines made here are disposed of when the app stops
    db = db or Databases(settings.database)
    # The key ring and the session secret live in the control database (created on first start).
    watcher, stored_secret = open_ring_sync(settings)
    keyring = watcher.ring
    secret = _session_secret(stored_secret)
    state = State({"settings": settings, "db": db, "keyring": keyring, "ring_watcher": watcher, "oidc": None})
    # Spans are exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set (control_plane.telemetry).
    tracing = telemetry.enable_tracing([db.control, *db.cells.values()])

    async def start(app: Litestar) -> None:
        # Rotations made through another instance are picked up within POLL_SECONDS.
        app.state.ring_task = start_watching(watcher, app.state.db.control)
        if run_scheduler:  # e.g. a restarted server settles what a stopped one left pending, at once
            app.state.starting = [asyncio.create_task(hook(app.state.db)) for d in domains() for hook in d.on_start]
            leader = Leader(app.state.db)
            app.state.leader = leader
            app.state.scheduler = build_scheduler(JobContext(settings, app.state.db, app.state.keyring), leader)
            app.state.scheduler.start()

    async def close(app: Litestar) -> None:
        await stop_watching(getattr(app.state, "ring_task", None))
        if getattr(app.state, "scheduler", None) is not None:
            app.state.scheduler.shutdown(wait=False)
            await app.state.leader.release()
        if app.state.oidc is not None:
            await app.state.oidc.aclose()
        if owns_db:
            await app.state.db.dispose()
        if tracing is not None:
            await asyncio.to_thread(tracing.close)  # flushes the last spans

    session_config = CookieBackendConfig(
        secret=secret,
        key="bpo_session",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        max_age=12 * 3600,
    )
    static = create_static_files_router(
        path="/static", directories=[ROOT / "control_plane" / "static"], opt={"public": True}, include_in_schema=False
    )
    templates = TemplateConfig(
        directory=[d for d in TEMPLATE_DIRS if d.exists()],
        engine=JinjaTemplateEngine,
        engine_callback=_register_template_callables,
    )
    app = Litestar(
        route_handlers=[
            *cp.ROUTES,
            *users.ROUTES,
            *account.ROUTES,
            metrics_endpoint,
            *mail_pages.ROUTES,
            *key_pages.ROUTES,
            static,
        ],
        plugins=[*domains()],  # each domain adds its routes (control_plane.plugins)
        state=state,
        guards=[authorize],
        dependencies={
            "session": Provide(provide_session),
            "principal": Provide(provide_principal, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "keyring": Provide(provide_keyring, sync_to_thread=False),
        },
        middleware=[
            telemetry.server_spans,  # outermost: the request's span is current in every layer below
            RequestIdMiddleware,
            BodyGuardMiddleware,
            session_config.middleware,
            DefineMiddleware(AuthenticationMiddleware),
        ],
        cors_config=CORSConfig(allow_origins=list(settings.cors_origins)) if settings.cors_origins else None,
        csrf_config=CSRFConfig(
            secret=secret.hex(),
            cookie_name="bpo_csrf",
            header_name="x-csrftoken",
            exclude=["/api/", "/schema", "/health", "/ready"],
            cookie_secure=settings.secure_cookies,
        ),
        exception_handlers=EXCEPTION_HANDLERS,
        template_config=templates,
        openapi_config=OpenAPIConfig(
            title="BPO Control Plane", version="1.0.0", path="/schema", render_plugins=[SwaggerRenderPlugin()]
        ),
        logging_config=None,  # control_plane.logging configures JSON logs for every logger
        before_send=[security_headers(secure=settings.secure_cookies)],
        before_request=openapi.complete_on_first_use,
        on_startup=[start],
        on_shutdown=[close],
        debug=False,
    )
    # The OpenAPI document is public: mark its handlers so the one guard (and the route-table test) see it.
    for route in app.routes:
        if route.path.startswith("/schema"):
            for handler in getattr(route, "route_handlers", []):
                handler.opt["public"] = True
    return app
