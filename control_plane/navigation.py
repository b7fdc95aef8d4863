"""What each role sees in the header and in a tenant's tabs, and flash messages that survive a redirect.

Domains declare their links (``Domain.nav``, ``Domain.tenant_tabs``); the kernel adds its own (users,
account) and registers two template callables, ``nav_links(who)`` and ``tenant_tab_links(who, slug)``,
that ``base.html`` and ``_tabs.html`` call. Flash messages are set with Litestar's ``flash`` and kept in the
session until the next page shows them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar.connection import ASGIConnection
from litestar.plugins.flash import flash

from control_plane import plugins
from control_plane.auth import EVERYONE, MERCHANT_ROLES, Principal, Role
from control_plane.plugins import NavLink

USER_ADMINS = frozenset({Role.platform_admin.value, Role.account_manager.value})
KERNEL_NAV = (
    NavLink("users", "Users", "/users", USER_ADMINS, order=80),
    NavLink("mail", "Mail", "/mail", USER_ADMINS, order=85),
    NavLink("keys", "Keys", "/keys", frozenset({Role.platform_admin.value}), order=87),
    NavLink("account", "My account", "/account", frozenset(str(r) for r in EVERYONE), order=90),
)
KERNEL_TABS = (
    NavLink(
        "users",
        "Users",
        "/tenants/{slug}/users",
        USER_ADMINS | {Role.merchant_admin.value},
        order=80,
    ),
)


def nav_links(_context: Any, who: Principal | None) -> list[tuple[str, str]]:
    """``(href, label)`` of the header links for ``who``; a merchant's first link is its own tenant."""
    if who is None:
        return []
    links = [(n.href, n.label) for n in plugins.nav_links(who.role, KERNEL_NAV)]
    if who.role in MERCHANT_ROLES and who.tenant_slug:
        links.insert(0, (f"/tenants/{quote(who.tenant_slug)}", "Overview"))
    return links


def tenant_tab_links(_context: Any, who: Principal | None, slug: str) -> list[tuple[str, str, str]]:
    """``(key, label, href)`` of the tabs of tenant ``slug`` that ``who`` sees."""
    if who is None:
        return []
    return [(n.key, n.label, n.href.replace("{slug}", quote(slug))) for n in plugins.tenant_tabs(who.role, KERNEL_TABS)]


def notify(request: ASGIConnection, message: str, category: str = "notice") -> None:
    """A message shown on the next page rendered (after a redirect: post-redirect-get)."""
    if not isinstance(request.scope.get("session"), dict):  # none yet, or cleared by a sign-out
        request.set_session({})
    flash(request, message, category)


def get_flashes(context: Any) -> list[dict[str, str]]:
    """The messages waiting in the session, taken once (a cleared session, e.g. after sign-out, has none)."""
    request = context.get("request")
    session = request.scope.get("session") if request is not None else None
    return session.pop("_messages", []) if isinstance(session, dict) else []


TEMPLATE_CALLABLES = {"nav_links": nav_links, "tenant_tab_links": tenant_tab_links, "get_flashes": get_flashes}
