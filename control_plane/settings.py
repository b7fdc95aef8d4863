"""Settings of the control plane, read from ``BPO_*`` environment variables.

Small frozen dataclasses, one per concern, built once by :func:`load_settings`.
The embedded default keeps every database as a SQLite file under ``BPO_DATA_DIR``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_REGIONS = {"eu": "GDPR", "us": "CCPA", "sg": "PDPA", "cn": "PIPL"}


def _parse_pairs(raw: str, name: str) -> dict[str, str]:
    """Parse ``a=x,b=y`` into a dict; a malformed pair names the variable."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{name}: expected name=value pairs separated by commas, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def cell_region(cell: str, regions: dict[str, str] | list[str]) -> str:
    """The region of a cell name: ``<region>`` or ``<region>-<suffix>`` with the region in the registry."""
    if cell in regions:
        return cell
    region, sep, suffix = cell.rpartition("-")
    while sep:
        if region in regions and suffix:
            return region
        region, sep, _ = region.rpartition("-")
    raise ValueError(
        f"BPO_CELL_URLS: cell {cell!r} is neither a region of the registry {sorted(regions)} nor "
        "'<region>-<suffix>' of one (e.g. eu-2)"
    )


@dataclass(frozen=True)
class DatabaseSettings:
    control_url: str
    cell_urls: dict[str, str]  # cell name (``eu``, ``eu-1``, ``eu-2``) -> URL
    echo: bool = False
    # The region registry (region -> regime, ``BPO_REGIONS``): which regime each cell's data is under.
    regions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_REGIONS))


@dataclass(frozen=True)
class OIDCSettings:
    issuer: str | None
    client_id: str | None
    client_secret: str | None
    scope: str = "openid email profile"

    @property
    def enabled(self) -> bool:
        return bool(self.issuer and self.client_id)


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    data_dir: Path
    database: DatabaseSettings
    oidc: OIDCSettings
    regions: dict[str, str]
    payment_provider: str
    public_url: str
    secure_cookies: bool = False
    # /ready answers 503 when a rollup delta has waited in a cell longer than this (seconds).
    ready_max_delta_age: float = 300.0
    # A process applies its batches' rollup deltas at most once per this many seconds (those of the
    # batches in between go together: fewer, larger upserts on the control database); 0: at once.
    rollup_interval: float = 0.2
    # Origins whose pages may call the API from a browser (CORS); none by default.
    cors_origins: tuple[str, ...] = ()
    # Outbound webhooks to loopback, link-local or private addresses (tests, on-premise receivers).
    allow_private_webhooks: bool = False
    # ``GET /metrics`` answers ``Authorization: Bearer <this>`` (and platform admins); unset: admins only.
    metrics_token: str | None = None
    # E-mail (control_plane.mail): ``smtp://host:port``, ``smtp+starttls://user:pass@host:587`` or
    # ``smtps://user:pass@host:465``; none: messages are rendered and kept for the staff page /mail.
    smtp_url: str | None = None
    mail_from: str = "BPO Control Plane <noreply@localhost>"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def keyring_path(self) -> Path:
        return self.data_dir / "keyring.json"

    @property
    def session_secret_path(self) -> Path:
        return self.data_dir / "session.key"


def _seconds(env: dict[str, str], name: str, default: str, *, most: float) -> float:
    raw = env.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}: expected a number of seconds, got {raw!r}") from None
    if not 0 <= value <= most:
        raise ValueError(f"{name}: expected seconds from 0 to {most:g}, got {raw!r}")
    return value


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("BPO_DATA_DIR", "var")).resolve()
    regions = _parse_pairs(env["BPO_REGIONS"], "BPO_REGIONS") if env.get("BPO_REGIONS") else dict(DEFAULT_REGIONS)
    control_url = env.get("BPO_DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'control.db'}"
    cell_urls = _parse_pairs(env.get("BPO_CELL_URLS", ""), "BPO_CELL_URLS")
    covered = {cell_region(cell, regions) for cell in cell_urls}  # raises on a cell of no known region
    for region in regions:
        if region not in covered:  # a region with no cell named gets the embedded default, one cell
            cell_urls[region] = f"sqlite+aiosqlite:///{data_dir / f'cell-{region}.db'}"
    provider = env.get("BPO_PAYMENT_PROVIDER", "none")
    if provider not in {"none", "polar", "stripe"}:
        raise ValueError(f"BPO_PAYMENT_PROVIDER: expected none, polar or stripe, got {provider!r}")
    host = env.get("BPO_HOST", "127.0.0.1")
    port = int(env.get("BPO_PORT", "8000"))
    return Settings(
        host=host,
        port=port,
        data_dir=data_dir,
        database=DatabaseSettings(
            control_url=control_url, cell_urls=cell_urls, echo=env.get("BPO_DB_ECHO") == "1", regions=regions
        ),
        oidc=OIDCSettings(
            issuer=env.get("BPO_OIDC_ISSUER") or None,
            client_id=env.get("BPO_OIDC_CLIENT_ID") or None,
            client_secret=env.get("BPO_OIDC_CLIENT_SECRET") or None,
        ),
        regions=regions,
        payment_provider=provider,
        public_url=env.get("BPO_PUBLIC_URL", f"http://{host}:{port}").rstrip("/"),
        secure_cookies=env.get("BPO_SECURE_COOKIES") == "1",
        ready_max_delta_age=float(env.get("BPO_READY_MAX_DELTA_AGE", "300")),
        rollup_interval=_seconds(env, "BPO_ROLLUP_INTERVAL", "0.2", most=10.0),
        cors_origins=tuple(o.strip() for o in env.get("BPO_CORS_ORIGINS", "").split(",") if o.strip()),
        allow_private_webhooks=env.get("BPO_ALLOW_PRIVATE_WEBHOOKS") == "1",
        metrics_token=env.get("BPO_METRICS_TOKEN") or None,
        smtp_url=_smtp_url(env.get("BPO_SMTP_URL") or None),
        mail_from=env.get("BPO_MAIL_FROM") or "BPO Control Plane <noreply@localhost>",
    )


SMTP_SCHEMES = ("smtp", "smtp+starttls", "smtps")


def _smtp_url(url: str | None) -> str | None:
    """``BPO_SMTP_URL`` checked at start: a scheme we speak and a host."""
    if url is None:
        return None
    scheme, sep, rest = url.partition("://")
    host = rest.rpartition("@")[2].split("/")[0].split(":")[0]
    if not sep or scheme not in SMTP_SCHEMES or not host:
        raise ValueError(f"BPO_SMTP_URL: expected smtp://, smtp+starttls:// or smtps:// with a host, got {scheme}://…")
    return url
