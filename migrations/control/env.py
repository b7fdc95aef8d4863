import billing.metering.models
import billing.outbox.models  # noqa: F401  (outbox, scheduler lease)
import compliance.models  # noqa: F401
import control_plane.models  # noqa: F401  (registers the tables)
import tenants.models  # noqa: F401
from control_plane.database import ControlBase
from control_plane.settings import load_settings
from migrations.env_common import run

run(ControlBase.metadata, load_settings().database.control_url)
