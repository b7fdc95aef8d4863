"""The platform admins' page of the key ring (``/keys``): the active key, the keys the ring holds and
its version, and a rotation from there (the same as ``bpoctl keys rotate``, `service.rotate_keys`:
a new key, every sealed secret re-sealed under it, the audit signing key rotated, unused keys
dropped; audited as ``keys.rotated`` with the admin as actor). The ring lives in the control
database: every instance reloads it within seconds (``control_plane.keystore``), this one at once."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.response import Redirect, Template

from control_plane import service
from control_plane.auth import Principal, Role, policy
from control_plane.controllers import FORM
from control_plane.keyring import KeyRing
from control_plane.navigation import notify
from control_plane.settings import Settings

ADMINS = policy(roles=(Role.platform_admin,))


@get("/keys", opt=ADMINS, include_in_schema=False)
async def keys_page(state: State, principal: Principal, keyring: KeyRing) -> Template:
    return Template(
        "keys.html",
        context={
            "principal": principal,
            "active": keyring.active,
            "keys": sorted(keyring.keys),
            "version": state.ring_watcher.version,
        },
    )


@get("/keys/rotate", opt=ADMINS, include_in_schema=False)
async def rotate_confirm(principal: Principal) -> Template:
    return Template(
        "confirm.html",
        context={
            "principal": principal,
            "title": "Rotate every key?",
            "detail": "A new key-ring key seals every secret again (integration credentials, webhook secrets, "
            "second factors); the audit log gets a new signing key (the old one stays published, so past "
            "exports still verify); keys nothing uses any more are dropped. Every instance picks the new "
            "ring up within seconds.",
            "action": "/keys/rotate",
            "button": "Rotate keys",
            "danger": False,
            "back": "/keys",
            "fields": [],
        },
    )


@post("/keys/rotate", opt=ADMINS, include_in_schema=False)
async def rotate_form(
    request: Request,
    state: State,
    settings: Settings,
    principal: Principal,
    keyring: KeyRing,
    data: Annotated[dict[str, str], FORM],
) -> Redirect:
    fresh = KeyRing(keys=dict(keyring.keys), active=keyring.active)  # the live ring changes only on success
    changed, retired = await service.rotate_keys(settings, fresh, actor=principal)
    await state.ring_watcher.refresh(state.db.control)  # this instance at once; the others at their next poll
    notify(
        request,
        f"Keys rotated: the active key is now {fresh.active}; {changed} secrets sealed again; "
        f"retired: {', '.join(retired) or 'none'}.",
    )
    return Redirect("/keys")


ROUTES: list[Any] = [keys_page, rotate_confirm, rotate_form]
