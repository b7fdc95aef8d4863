"""The platform admins' page of cells (``/cells``): where each region's contact data lives, which cell
holds each tenant in a region with several, and a tenant moved to another cell from there (the same
move as ``bpoctl tenants move``, `moves.move_tenant`, run while the request waits: the page says what
was copied, caught up and removed, and whether the rollups match a recount)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from billing.metering import moves
from control_plane.auth import Principal, Role, policy
from control_plane.controllers import FORM, form_errors
from control_plane.errors import DomainError, FieldError, InvalidInput
from control_plane.navigation import notify

ADMINS = policy(roles=(Role.platform_admin,))


async def _page(
    state: State,
    session: AsyncSession,
    principal: Principal,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    db = state.db
    placed = await moves.placement_rows(session)
    regions = []
    for region in sorted(set(db.cell_regions.values())):
        cells = db.cells_of(region)
        rows = [p for p in placed if p.region == region]
        regions.append(
            {
                "name": region,
                "regime": db.regions.get(region, ""),
                "cells": [{"name": c, "tenants": sum(1 for p in rows if p.cell == c)} for c in cells],
                "placements": rows if len(cells) > 1 else [],
            }
        )
    return Template(
        "cells.html",
        status_code=status_code,
        context={"principal": principal, "regions": regions, "errors": errors or {}, "values": values or {}},
    )


@get("/cells", opt=ADMINS, include_in_schema=False)
async def cells_page(state: State, session: AsyncSession, principal: Principal) -> Template:
    return await _page(state, session, principal)


def _report(r: moves.MoveReport) -> str:
    rollups = {True: "the rollups match a recount", False: "the rollups DIFFER from a recount", None: "not checked"}
    text = (
        f"Moved {r.slug} in {r.region} from {r.source} to {r.target}: {r.contacts} contacts ({r.copied} copied, "
        f"{r.caught_up} caught up under the fence), {r.deltas} pending deltas, {r.removed} rows removed from "
        f"{r.source}; {rollups[r.rollups_match]}."
    )
    return " ".join([text, *r.notes])


@post("/cells/moves", opt=ADMINS, include_in_schema=False)
async def move_form(
    request: Request,
    state: State,
    session: AsyncSession,
    principal: Principal,
    data: Annotated[dict[str, str], FORM],
) -> Template | Redirect:
    slug, region, target = (data.get(k, "").strip() for k in ("tenant", "region", "target"))
    try:
        missing = [FieldError(k, "choose one") for k, v in (("tenant", slug), ("target", target)) if not v]
        if missing:
            raise InvalidInput(missing)
        report = await moves.move_tenant(state.db, principal, slug, region, target)
    except moves.MoveRefused as exc:
        errors = {exc.field or "_form": exc.message}
        return await _page(state, session, principal, errors=errors, values=data, status_code=exc.status_code)
    except DomainError as exc:
        return await _page(state, session, principal, errors=form_errors(exc), values=data, status_code=exc.status_code)
    notify(request, _report(report))
    return Redirect("/cells")


ROUTES: list[Any] = [cells_page, move_form]
