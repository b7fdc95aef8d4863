"""Shared Alembic environment: runs migrations synchronously on the URL the caller chose.

The URL comes from ``config.attributes["url"]`` (``bpoctl db upgrade``), else ``-x url=…``, else the
settings (``BPO_DATABASE_URL`` / ``BPO_CELL_URLS``). Async driver names are swapped for their sync
twins (aiosqlite -> pysqlite; psycopg serves both).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context


def sync_url(url: str) -> str:
    return url.replace("sqlite+aiosqlite", "sqlite").replace("postgresql+asyncpg", "postgresql+psycopg")


def run(target_metadata: sa.MetaData, default_url: str) -> None:
    config = context.config
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url") or default_url
    engine = sa.create_engine(sync_url(url), poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
