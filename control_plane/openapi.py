"""The OpenAPI 3.1 document, completed from the code: what Litestar derives from the route signatures,
plus what it cannot see.

- **Request bodies**: the handlers take ``dict`` and the services parse it with their own models; each
  domain names those models per operation (``Domain.request_bodies``, ``"POST /api/v1/tenants":
  TenantCreate``), and their JSON schemas become components (pydantic models and msgspec structs).
- **Errors**: every 4xx/5xx a route can answer, each with the one problem JSON schema (``Problem``).
- **Security**: three schemes (bearer token, tenant API key, browser session cookie), and per
  operation the ones its policy (``opt``) accepts; public routes need none.
- **Content types**: answers that are not JSON (CSV, PDF, NDJSON, HTML, redirects) as each domain
  declares them (``Domain.answers``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import msgspec
from litestar import Litestar, Request
from litestar.routes import HTTPRoute
from pydantic import BaseModel

from control_plane import plugins
from control_plane.identity import UserCreate

REF = "#/components/schemas/{}"
PROBLEM_TYPE = "application/problem+json"
PROBLEM = {
    "type": "object",
    "description": "Problem details: what happened (code), why (detail), and each bad field with its reason.",
    "required": ["status", "code", "detail"],
    "properties": {
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
        "request_id": {"type": ["string", "null"]},
    },
}
ERRORS = {
    400: "Malformed request (body or parameters)",
    401: "Not signed in, or the credential is unknown, revoked or expired",
    403: "The caller may not do this",
    404: "Not found, or not the caller's",
    409: "Conflicts with the current state",
    413: "The body is too large",
    415: "The body is not JSON, or is encoded",
    422: "Some fields are not valid (each named)",
    429: "Too many requests: retry after Retry-After seconds",
    500: "Something went wrong on our side",
    503: "A database is unavailable for a moment: send it again",
}
SECURITY_SCHEMES = {
    "bearerToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "bpo_tok_…",
        "description": "A bearer token for scripts (`bpoctl token issue`), with a role and maybe a tenant.",
    },
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "bpo_live_…",
        "description": "A tenant API key with scopes (contacts:write, sla:read, invoices:read).",
    },
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "bpo_session",
        "description": "The browser session (after signing in): safe reads of the API only.",
    },
}
METHODS = ("get", "put", "post", "delete", "patch")


def _model_schemas(models: Iterable[Any]) -> tuple[dict[str, dict], dict[type, dict]]:
    """``(components, refs)``: the JSON schema of each model as components, and a reference to each."""
    components: dict[str, dict] = {}
    refs: dict[Any, dict] = {}
    structs = []
    for model in models:
        if isinstance(model, type) and issubclass(model, BaseModel):
            schema = model.model_json_schema(ref_template=REF.replace("{}", "{model}"))
            components.update(schema.pop("$defs", {}))
            components[model.__name__] = schema
            refs[model] = {"$ref": REF.format(model.__name__)}
        else:
            structs.append(model)
    if structs:
        out, defs = msgspec.json.schema_components(structs, ref_template=REF.replace("{}", "{name}"))
        components.update(defs)
        refs.update(zip(structs, out, strict=True))
    return components, refs


def _policies(app: Litestar) -> dict[tuple[str, str], dict]:
    found = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                for method in handler.http_methods:
                    found[(method.lower(), route.path_format)] = handler.opt or {}
    return found


def _security(opt: dict) -> list[dict]:
    if opt.get("public"):
        return []
    schemes = []
    if opt.get("roles"):
        schemes += [{"bearerToken": []}, {"sessionCookie": []}]
    if opt.get("scopes"):
        schemes.append({"apiKey": []})
    return schemes


def _statuses(path: str, method: str, opt: dict) -> list[int]:
    codes = [400, 422, 500, 503]
    if not opt.get("public") or "webhooks" in path:
        codes += [401, 403] if not opt.get("public") else [401]
    if "{" in path or not opt.get("public"):
        codes.append(404)
    if method in ("post", "put", "patch", "delete"):
        codes += [409, 413, 415, 429]
    return sorted(set(codes))


def complete(app: Litestar, doc: dict[str, Any]) -> dict[str, Any]:
    """The document Litestar generated, completed (see the module docstring)."""
    doc = copy.deepcopy(doc)
    bodies = {key: model for d in plugins.domains() for key, model in d.request_bodies.items()}
    bodies |= KERNEL_BODIES
    answers = {key: spec for d in plugins.domains() for key, spec in d.answers.items()}
    components, refs = _model_schemas(dict.fromkeys(bodies.values()))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(components)
    schemas["Problem"] = PROBLEM
    doc["components"]["securitySchemes"] = SECURITY_SCHEMES
    policies = _policies(app)
    # Problem JSON; a browser (Accept preferring text/html) gets the same facts as an HTML page.
    problem = {PROBLEM_TYPE: {"schema": {"$ref": REF.format("Problem")}}, "text/html": {"schema": {"type": "string"}}}
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            opt = policies.get((method, path), {})
            key = f"{method.upper()} {path}"
            if key in bodies:
                op["requestBody"] = {"required": True, "content": {"application/json": {"schema": refs[bodies[key]]}}}
            op["security"] = _security(opt)
            responses = op.setdefault("responses", {})
            for code in _statuses(path, method, opt):
                responses[str(code)] = {"description": ERRORS[code], "content": problem}
            for status, types in answers.get(key, {}).items():
                if not types:  # a redirect: no body
                    responses[status] = {"description": "Redirect (see Location)"}
                    continue
                success = responses.get(status) or {"description": "OK"}
                schema = next(iter((success.get("content") or {}).values()), {}).get("schema", {})
                success["content"] = {
                    t: {"schema": schema if t.endswith("json") else {"type": "string"}} for t in types
                }
                responses[status] = success
    return doc


def install(app: Litestar) -> None:
    """Serve the completed document at ``/schema/openapi.json`` (and to the Swagger page)."""
    plugin = app.plugins.get("OpenAPIPlugin")
    # Litestar caches the generated document in this slot and serves it from there.
    plugin._openapi_schema = complete(app, plugin.provide_openapi_schema())


async def complete_on_first_use(request: Request) -> None:
    """An app-level ``before_request``: the document is generated and completed when first asked for
    (about 0.2 s), not each time an app starts. Completing it twice gives the same document."""
    if request.url.path.startswith("/schema") and not getattr(request.app.state, "openapi_completed", False):
        install(request.app)
        request.app.state.openapi_completed = True


class RoleChange(msgspec.Struct):
    role: str


KERNEL_BODIES: dict[str, Any] = {"POST /api/v1/users": UserCreate, "PUT /api/v1/users/{user_id}/role": RoleChange}
