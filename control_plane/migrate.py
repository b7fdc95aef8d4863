"""Bring the control database and every region cell to the head of their Alembic lines."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from control_plane.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(line: str, url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"), ini_section="alembic" if line == "control" else "cell")
    cfg.attributes["url"] = url
    return cfg


def upgrade_all(settings: Settings) -> list[str]:
    """Upgrade every database; returns what was upgraded, e.g. ``["control", "cell:eu", …]``."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    done = []
    command.upgrade(alembic_config("control", settings.database.control_url), "head")
    done.append("control")
    for region, url in settings.database.cell_urls.items():
        command.upgrade(alembic_config("cell", url), "head")
        done.append(f"cell:{region}")
    return done


def _missing_sqlite_file(url: str) -> bool:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return False
    return not Path(parsed.database).exists()


def check_all(settings: Settings) -> None:
    """Raise when a model and its migrations disagree (``alembic check``) on any database.

    As ``alembic check`` does (``migrations/env_common.py``), a SQLite file that does not exist yet
    (a fresh checkout) is created and migrated to head first, so that the check compares models
    with migrations instead of failing to open it. Existing databases are only read."""
    lines = [("control", settings.database.control_url), *(("cell", u) for u in settings.database.cell_urls.values())]
    for line, url in lines:
        if _missing_sqlite_file(url):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            command.upgrade(alembic_config(line, url), "head")
        command.check(alembic_config(line, url))
