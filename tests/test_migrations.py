"""Every database upgrades from empty to head, and the models agree with the migrations (no drift)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from control_plane.database import CellBase, ControlBase, load_models
from control_plane.migrate import alembic_config
from migrations.env_common import COMPARE_OPTIONS, sync_url


def _drift(url: str, metadata: sa.MetaData) -> list:
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts=COMPARE_OPTIONS), metadata)
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


class TestMigrations:
    def test_every_database_is_at_the_single_head(self, settings):
        control_head = ScriptDirectory.from_config(alembic_config("control", settings.database.control_url))
        cell_head = ScriptDirectory.from_config(alembic_config("cell", settings.database.control_url))
        assert len(control_head.get_heads()) == 1 and len(cell_head.get_heads()) == 1
        assert _revision(settings.database.control_url) == control_head.get_current_head()
        for url in settings.database.cell_urls.values():
            assert _revision(url) == cell_head.get_current_head()

    def test_db_check_on_a_fresh_checkout_creates_the_sqlite_files_and_finds_no_drift(self, tmp_path):
        from click.testing import CliRunner

        from control_plane.cli import main

        env = {"BPO_DATA_DIR": str(tmp_path / "var"), "BPO_DATABASE_URL": "", "BPO_CELL_URLS": ""}
        result = CliRunner().invoke(main, ["db", "check"], env=env)
        assert result.exit_code == 0, result.output
        assert result.output.strip().endswith("no drift")
        assert sorted(p.name for p in (tmp_path / "var").glob("*.db")) == [
            "cell-cn.db",
            "cell-eu.db",
            "cell-sg.db",
            "cell-us.db",
            "control.db",
        ]

    def test_models_and_migrations_agree(self, settings):
        load_models()
        assert _drift(settings.database.control_url, ControlBase.metadata) == []
        for url in settings.database.cell_urls.values():
            assert _drift(url, CellBase.metadata) == []
