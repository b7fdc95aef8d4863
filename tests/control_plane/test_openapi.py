"""The OpenAPI document says what the code does: a component schema for every request body, the
security schemes and who may call each operation, every error as problem JSON, every content type."""

from __future__ import annotations

METHODS = ("get", "put", "post", "delete", "patch")


async def test_the_document_is_complete(client):
    doc = (await client.get("/schema/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    schemas = doc["components"]["schemas"]
    assert set(doc["components"]["securitySchemes"]) == {"bearerToken", "apiKey", "sessionCookie"}
    assert {"Problem", "TenantCreate", "Contract", "ContactWire", "RequestCreate", "UserCreate"} <= set(schemas)
    ops = [(m, p, op) for p, item in doc["paths"].items() for m, op in item.items() if m in METHODS]
    assert len(ops) >= 60
    for method, path, op in ops:
        body = op.get("requestBody")
        if body is not None:
            schema = body["content"]["application/json"]["schema"]
            ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
            assert ref and ref.split("/")[-1] in schemas, (method, path, schema)
        for code, answer in op["responses"].items():
            if code.startswith(("4", "5")):
                assert answer["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}},
                    "text/html": {"schema": {"type": "string"}},
                }, (method, path, code)
        assert "security" in op, (method, path)
    ingest = doc["paths"]["/api/v1/tenants/{slug}/contacts"]["post"]
    assert ingest["requestBody"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/ContactWire"},
    }
    assert ingest["security"] == [{"apiKey": []}]
    assert {"opened_at", "external_id", "resolution"} <= set(schemas["ContactWire"]["properties"])
    assert doc["paths"]["/health"]["get"]["security"] == []
    assert {"bearerToken": []} in doc["paths"]["/api/v1/tenants"]["post"]["security"]
    types = {
        ("/api/v1/tenants/{slug}/sla.csv", "200"): ["text/csv"],
        ("/api/v1/tenants/{slug}/sla.pdf", "200"): ["application/pdf"],
        ("/api/v1/invoices.csv", "200"): ["text/csv"],
        ("/api/v1/audit/export", "200"): ["application/x-ndjson", "text/csv"],
        ("/api/v1/invoices/{ref}", "200"): ["application/json", "application/pdf"],
    }
    for (path, code), expected in types.items():
        assert sorted(doc["paths"][path]["get"]["responses"][code]["content"]) == sorted(expected), path
    post_tenant = doc["paths"]["/api/v1/tenants"]["post"]["responses"]
    assert {"201", "400", "401", "403", "409", "415", "422"} <= set(post_tenant)
