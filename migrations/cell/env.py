import os

from alembic import context

from control_plane.database import CellBase, load_models
from control_plane.settings import load_settings
from migrations.env_common import run

load_models()
region = context.get_x_argument(as_dictionary=True).get("region", "eu")
run(CellBase.metadata, os.environ.get("BPO_CELL_URL") or load_settings().database.cell_urls[region])
