from control_plane.database import ControlBase, load_models
from control_plane.settings import load_settings
from migrations.env_common import run

load_models()  # every domain's models.py, so autogenerate and `alembic check` see every table
run(ControlBase.metadata, load_settings().database.control_url)
