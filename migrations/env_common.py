"""Shared Alembic environment: runs migrations synchronously on the URL the caller chose.

The URL comes from ``config.attributes["url"]`` (``bpoctl db upgrade``), else ``-x url=…``, else the
settings (``BPO_DATABASE_URL`` / ``BPO_CELL_URLS``). Async driver names are swapped for their sync
twins (aiosqlite -> pysqlite; psycopg serves both).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic import context


def sync_url(url: str) -> str:
    return url.replace("sqlite+aiosqlite", "sqlite").replace("postgresql+asyncpg", "postgresql+psycopg")


def _migrate_fresh_sqlite_for_check(config, url: str) -> None:
    """``alembic check`` on a fresh checkout: the default SQLite file (``var/``) does not exist yet.

    It is created and migrated to head first, in a child ``alembic upgrade head`` with the same
    options, so that the check compares the models with the migrations (rather than failing to
    open the file, or finding an empty database behind head). Only for ``check``, only for a SQLite
    file that does not exist.
    """
    cmd = getattr(config.cmd_opts, "cmd", None)
    if not cmd or getattr(cmd[0], "__name__", "") != "check":
        return
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "alembic", "-c", config.config_file_name, "-n", config.config_ini_section]
    args += [f"-x{x}" for x in (config.cmd_opts.x or [])]
    subprocess.run([*args, "upgrade", "head"], check=True, capture_output=True)  # noqa: S603 (our own alembic)


# PostgreSQL partitions ``contacts`` by month (cell revision c0006_partitions): DDL the models do not
# describe. The partitions are no tables of their own, and the unique index holds the partition key
# (``opened_at``), so the models' ``(tenant_id, external_id)`` exists on SQLite only.
_PARTITION = re.compile(r"^contacts_(default|p\d{4}_\d{2})$")
_PARTITIONED_UNIQUE = "uq_contacts_tenant_id_external_id_opened_at"
_MODEL_UNIQUE = "uq_contacts_tenant_id_external_id"


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's compare filter: leave the partitioning of ``contacts`` out of the model compare."""
    if type_ == "table" and reflected and name and _PARTITION.match(name):
        return False
    if type_ == "unique_constraint" and reflected and name == _PARTITIONED_UNIQUE:
        return False
    if type_ == "unique_constraint" and not reflected and compare_to is None and name == _MODEL_UNIQUE:
        return False  # missing only where the table is partitioned
    return True


COMPARE_OPTIONS = {"compare_type": True, "include_object": include_object}


def run(target_metadata: sa.MetaData, default_url: str) -> None:
    config = context.config
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url") or default_url
    _migrate_fresh_sqlite_for_check(config, sync_url(url))
    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            **COMPARE_OPTIONS,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
