"""``bpoctl``: the operator's command line (serve, database, demo data, tokens, keys)."""

from __future__ import annotations

import asyncio
import gc
import sys
from pathlib import Path
from typing import Any

import click
import uvicorn

from control_plane.actors import SystemActor
from control_plane.app import create_app
from control_plane.database import Databases
from control_plane.demo import seed_demo
from control_plane.errors import DomainError
from control_plane.identity import IssuedLink, invite_user
from control_plane.keystore import load_keyring_sync, open_ring, start_watching, stop_watching
from control_plane.logging import configure_logging
from control_plane.migrate import check_all, upgrade_all
from control_plane.periodic import JobContext
from control_plane.plugins import domains
from control_plane.scheduler import Leader, build_scheduler
from control_plane.service import issue_token, list_tokens, revoke_token, rotate_keys
from control_plane.settings import load_settings


def _run(coro):
    return asyncio.run(coro)


@click.group()
def main() -> None:
    """BPO control plane operations. Settings come from BPO_* environment variables."""


@main.command()
@click.option("--host", default=None, help="default BPO_HOST or 127.0.0.1")
@click.option("--port", type=int, default=None, help="default BPO_PORT or 8000")
@click.option("--migrate/--no-migrate", default=True, help="upgrade every database first")
@click.option("--scheduler/--no-scheduler", default=True, help="run the periodic jobs in-process (one leader)")
@click.option("--workers", type=click.IntRange(min=1), default=1, help="server processes on this port (uvicorn)")
def serve(host: str | None, port: int | None, migrate: bool, scheduler: bool, workers: int) -> None:
    """Serve the API and the pages."""

    settings = load_settings()
    if migrate:
        upgrade_all(settings)
    host, port = host or settings.host, port or settings.port
    if workers == 1:
        run_server(create_app(settings, run_scheduler=scheduler), host, port)
        return
    # Each worker process builds its own app from the environment. With the scheduler, every worker
    # competes for the one leader lock (control_plane.scheduler), so the jobs still run once.
    factory = "control_plane.cli:served_app_with_scheduler" if scheduler else "control_plane.cli:served_app"
    uvicorn.run(
        factory,
        factory=True,
        workers=workers,
        host=host,
        port=port,
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
        # A spawned worker imports the whole app before it can answer the supervisor's ping; on a
        # loaded host that takes longer than uvicorn's 5 s, and the supervisor would kill it in a loop.
        timeout_worker_healthcheck=120,
    )


def _tuned(app: object) -> object:
    """A worker's app with the collector tuned as in :func:`run_server`."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    return app


def served_app() -> object:
    """The app of one ``serve --workers N --no-scheduler`` process."""
    return _tuned(create_app(run_scheduler=False))


def served_app_with_scheduler() -> object:
    """The app of one ``serve --workers N`` process (each competes for the scheduler's leader lock)."""
    return _tuned(create_app(run_scheduler=True))


def server_config(app: object, host: str, port: int) -> uvicorn.Config:
    """How uvicorn serves the app: no ``server`` banner, no access log (the app logs each request)."""
    return uvicorn.Config(
        app, host=host, port=port, lifespan="on", log_level="warning", access_log=False, server_header=False
    )


def run_server(app: object, host: str, port: int) -> None:
    """uvicorn on ``host:port``, the garbage collector tuned for a server.

    What exists once the app is built (modules, routes, models, compiled statements: a few hundred
    thousand objects) is frozen out of the collector's generations, and the youngest generation is
    collected every 20,000 allocations instead of 700, so the collector no longer walks the whole
    heap while a 1,000-contact batch allocates its rows. Measured on the ingest benchmark: about
    half of the rollup arithmetic's time was collection (README, Metering).
    """

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    uvicorn.Server(server_config(app, host, port)).run()


@main.command()
def worker() -> None:
    """Run the periodic jobs (outbox, checkpoints, invoices, SLA, retention) without serving HTTP."""

    configure_logging()
    settings = load_settings()

    async def go() -> None:
        db = Databases(settings.database)
        leader = Leader(db)
        watcher = await open_ring(settings, db.control)
        ring_task = start_watching(watcher, db.control)  # rotations made elsewhere, within seconds
        scheduler = build_scheduler(JobContext(settings, db, watcher.ring), leader)
        scheduler.start()
        starting = [asyncio.create_task(hook(db)) for d in domains() for hook in d.on_start]  # noqa: F841 (kept alive)
        try:
            await asyncio.Event().wait()
        finally:
            await stop_watching(ring_task)
            scheduler.shutdown(wait=False)
            await leader.release()
            await db.dispose()

    try:
        _run(go())
    except KeyboardInterrupt:
        pass


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Upgrade the control database and every region cell to head."""

    for name in upgrade_all(load_settings()):
        click.echo(f"{name}: at head")


@db.command("check")
def db_check() -> None:
    """Fail when models and migrations disagree on any database."""

    check_all(load_settings())
    click.echo("no drift")


@main.command()
@click.option("--serve/--no-serve", "then_serve", default=True, help="start the server after seeding")
def demo(then_serve: bool) -> None:
    """Migrate, create the bootstrap admin and seed demo tenants, then serve."""

    settings = load_settings()
    upgrade_all(settings)
    report = _run(seed_demo(settings))
    if report.admin_password:
        click.echo(f"Bootstrap admin: {report.admin_email} / {report.admin_password}  (shown once; store it now)")
    else:
        click.echo(f"Bootstrap admin {report.admin_email} exists already (password shown at first start).")
    click.echo(f"Demo tenants: {', '.join(report.tenants)}")
    for line in report.invoices:
        click.echo(f"  invoice {line}")
    click.echo("Demo people: each opens its one-time invitation link (72 h) to choose a password, then signs in:")
    for role, email, link in report.invitations:
        click.echo(f"  {role:<19} {email:<28} {link}")
    if then_serve:
        click.echo(f"Serving on http://{settings.host}:{settings.port}")

        run_server(create_app(settings, run_scheduler=True), settings.host, settings.port)


@main.group()
def token() -> None:
    """Bearer tokens for scripts."""


@token.command("issue")
@click.option(
    "--role", required=True, help="platform_admin, account_manager, compliance_officer, merchant_admin, merchant_viewer"
)
@click.option("--tenant", default=None, help="tenant slug (merchant roles)")
@click.option("--label", default="cli")
@click.option("--days", type=int, default=90, help="days until it expires")
def token_issue(role: str, tenant: str | None, label: str, days: int) -> None:
    """Print a new bearer token (its secret is shown once)."""

    async def go() -> str:
        dbs = Databases(load_settings().database)
        try:
            async with dbs.control_transaction() as session:
                _, secret = await issue_token(
                    session, SystemActor("cli"), role=role, tenant=tenant, label=label, days=days
                )
            return secret
        finally:
            await dbs.dispose()

    click.echo(_cli_errors(go))


@token.command("list")
def token_list() -> None:
    """Every bearer token: id, prefix, role, tenant, label, state."""

    async def go() -> list:
        dbs = Databases(load_settings().database)
        try:
            async with dbs.control_session() as session:
                return await list_tokens(session)
        finally:
            await dbs.dispose()

    for t, slug in _run(go()):
        state = "revoked" if t.revoked_at else "active"
        click.echo(f"{t.id}  {t.prefix}  {t.role}  {slug or '-'}  {t.label}  {state}")


@token.command("revoke")
@click.argument("token_id")
def token_revoke(token_id: str) -> None:
    """Revoke a bearer token by its id (``bpoctl token list``); it stops working at once."""

    async def go() -> str:
        dbs = Databases(load_settings().database)
        try:
            async with dbs.control_transaction() as session:
                return (await revoke_token(session, SystemActor("cli"), token_id)).prefix
        finally:
            await dbs.dispose()

    click.echo(f"revoked {_cli_errors(go)}")


@main.group()
def keys() -> None:
    """The key ring that seals secrets at rest."""


@keys.command("rotate")
@click.option("--keep-old", is_flag=True, help="keep retired keys in the ring")
def keys_rotate(keep_old: bool) -> None:
    """New key-ring key (every secret re-sealed), new audit signing key; drop keys nothing uses."""

    settings = load_settings()
    ring = load_keyring_sync(settings)
    changed, retired = _run(rotate_keys(settings, ring, keep_old=keep_old))
    click.echo(f"active key {ring.active}; {changed} secrets re-encrypted; retired: {', '.join(retired) or 'none'}")


@main.group()
def users() -> None:
    """People who sign in."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True)
@click.option("--tenant", default=None)
@click.option("--name", default="")
def users_create(email: str, role: str, tenant: str | None, name: str) -> None:
    """Invite a user; the last line printed is the one-time invitation link (valid 72 hours)."""

    async def go() -> IssuedLink:
        settings = load_settings()
        dbs = Databases(settings.database)
        try:
            async with dbs.control_transaction() as session:
                body = {"email": email, "role": role, "tenant": tenant, "name": name}
                _, link = await invite_user(session, SystemActor("cli"), body, public_url=settings.public_url)
            return link
        finally:
            await dbs.dispose()

    link = _cli_errors(go)
    click.echo(f"invited {email} ({role}); the link works once, until {link.expires_at:%Y-%m-%d %H:%M} UTC:")
    click.echo(link.url)


def _cli_errors(go: Any) -> Any:
    """Run ``go()``; a refusal is printed as ``error: field: reason`` and exits 2."""
    try:
        return _run(go())
    except DomainError as exc:
        detail = "; ".join(f"{e.field}: {e.message}" for e in getattr(exc, "errors", [])) or exc.message
        click.echo(f"error: {detail}", err=True)
        sys.exit(2)


@main.group(invoke_without_command=True)
@click.pass_context
def bench(ctx: click.Context) -> None:
    """Benchmarks (``bench ingest``)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(bench_ingest)


@bench.command("ingest")
@click.option("--json", "as_json", is_flag=True, help="end with one JSON line of the figures")
@click.option("--database", default=None, help="a PostgreSQL URL (fresh databases are made beside it); default SQLite")
@click.option("--contacts", type=int, default=200_000, show_default=True)
@click.option("--concurrency", type=int, default=2, show_default=True, help="batches in flight from the sender")
@click.option("--workers", type=int, default=1, show_default=True, help="server processes behind the sender")
def bench_ingest(as_json: bool, database: str | None, contacts: int, concurrency: int, workers: int) -> None:
    """Ingest N contacts through a real server on loopback and compare with raw executemany inserts."""
    # Imported here, on the path of the checkout: the benchmarks live under tests/, which the
    # installed package does not ship.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.benchmarks.ingest import run_benchmark

    run_benchmark(
        database=database,
        contacts=contacts,
        concurrency=concurrency,
        as_json=as_json,
        echo=click.echo,
        workers=workers,
    )


# --- end metering -----------------------------------------------------------------------------


@bench.command("sla")
@click.option("--json", "as_json", is_flag=True, help="end with one JSON line of the figures")
@click.option("--contacts", type=int, default=200_000, show_default=True)
@click.option("--runs", type=int, default=20, show_default=True, help="timed report runs after one warm-up")
def bench_sla(as_json: bool, contacts: int, runs: int) -> None:
    """Median latency of the SLA report of a tenant with N contacts in one month (SQLite)."""
    # Imported here, on the path of the checkout: the benchmarks live under tests/, which the
    # installed package does not ship.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.benchmarks.sla import run_benchmark

    run_benchmark(contacts=contacts, runs=runs, as_json=as_json, echo=click.echo)


# --- compliance -------------------------------------------------------------------------------
@bench.command("audit-export")
@click.option("--json", "as_json", is_flag=True, help="end with one JSON line of the figures")
@click.option("--entries", type=int, default=1_000_000, show_default=True)
@click.option("--database", default=None, help="a PostgreSQL URL (fresh databases are made beside it); default SQLite")
def bench_audit_export(as_json: bool, entries: int, database: str | None) -> None:
    """Stream an N-entry audit export from a real server and sample its RSS (acceptance: < 50 MB growth)."""
    # Imported here, on the path of the checkout: the benchmarks live under tests/, which the
    # installed package does not ship.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.benchmarks.audit_export import run_benchmark

    run_benchmark(entries=entries, database=database, as_json=as_json, echo=click.echo)


# --- billing ----------------------------------------------------------------------------------
@bench.command("invoices")
@click.option("--json", "as_json", is_flag=True, help="end with one JSON line of the figures")
@click.option("--database", default=None, help="a PostgreSQL URL (fresh databases are made beside it); default SQLite")
@click.option("--tenants", type=int, default=1000, show_default=True)
@click.option("--contacts", type=int, default=2000, show_default=True, help="contacts per tenant in the period")
def bench_invoices(as_json: bool, database: str | None, tenants: int, contacts: int) -> None:
    """Draft one period for N tenants from their rollups; compare with one SQL aggregate over them."""
    # Imported here, on the path of the checkout: the benchmarks live under tests/, which the
    # installed package does not ship.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.benchmarks.invoices import run_benchmark

    run_benchmark(database=database, tenants=tenants, contacts=contacts, as_json=as_json, echo=click.echo)


@bench.command("usage-csv")
@click.option("--json", "as_json", is_flag=True, help="end with one JSON line of the figures")
@click.option("--database", default=None, help="a PostgreSQL URL (fresh databases are made beside it); default SQLite")
@click.option("--contacts", type=int, default=1_000_000, show_default=True, help="contacts of the invoice's month")
def bench_usage_csv(as_json: bool, database: str | None, contacts: int) -> None:
    """Stream an invoice's itemised usage (N contacts) from a real server and sample its RSS."""
    # Imported here, on the path of the checkout: the benchmarks live under tests/, which the
    # installed package does not ship.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.benchmarks.usage_csv import run_benchmark

    run_benchmark(contacts=contacts, database=database, as_json=as_json, echo=click.echo)


# Each domain's commands (``bpoctl rollups``, ``webhooks``, ``audit``), from its plugin.
for _domain in domains():
    for _command in _domain.commands:
        main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
