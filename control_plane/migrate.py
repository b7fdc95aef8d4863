"""Bring the control database and every region cell to the head of their Alembic lines."""

from __future__ import annotations

from pathlib import Path

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


def check_all(settings: Settings) -> None:
    """Raise when a model and its migrations disagree (``alembic check``) on any database."""
    command.check(alembic_config("control", settings.database.control_url))
    for url in settings.database.cell_urls.values():
        command.check(alembic_config("cell", url))
