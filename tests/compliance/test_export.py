"""Audit export: signed JSON Lines that verify offline, and refuse any change naming the line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from compliance import checkpoints
from compliance.verify import verify_lines
from control_plane.cli import main as bpoctl


@pytest.fixture
async def auditor(issue_token) -> dict[str, str]:
    return {"Authorization": f"Bearer {await issue_token('compliance_officer')}"}


async def _export(client, headers, stream: str, **params) -> list[str]:
    resp = await client.get("/api/v1/audit/export", params={"stream": stream, **params}, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.text.splitlines()


async def _jwks(client) -> dict:
    resp = await client.get("/api/v1/audit/keys")
    assert resp.status_code == 200
    return resp.json()


class TestExport:
    async def test_export_verifies_and_has_the_documented_shape(self, client, make_tenant, auditor):
        t = await make_tenant(onboard=True)
        lines = await _export(client, auditor, t["slug"])
        objs = [json.loads(x) for x in lines]
        assert [o["type"] for o in objs] == ["header"] + ["entry"] * 6 + ["checkpoint"]
        assert objs[0]["stream"] == t["slug"] and objs[0]["entries"] == 6
        assert objs[-1]["seq"] == 6 and objs[-1]["hash"] == objs[-2]["hash"]
        assert "=" not in objs[-1]["signature"] and objs[-1]["key_id"] in {
            k["kid"] for k in (await _jwks(client))["keys"]
        }
        verdict = verify_lines(lines, await _jwks(client))
        assert verdict.ok and verdict.entries == 6 and verdict.checkpoints == 1

    async def test_scheduled_checkpoints_appear_after_the_entry_they_cover(
        self, client, make_tenant, auditor, dbs, keyring, staff_headers
    ):
        t = await make_tenant()
        async with dbs.control_transaction() as session:
            assert await checkpoints.checkpoint_stream(session, keyring, t["slug"]) is not None
            assert await checkpoints.checkpoint_stream(session, keyring, t["slug"]) is None  # nothing moved
        await client.patch(f"/api/v1/tenants/{t['slug']}", json={"name": "Renamed"}, headers=staff_headers)
        lines = await _export(client, auditor, t["slug"])
        assert [json.loads(x)["type"] for x in lines] == ["header", "entry", "checkpoint", "entry", "checkpoint"]
        assert verify_lines(lines, await _jwks(client)).ok
        # The export-time checkpoint extended the stored chain: a second export still verifies.
        assert verify_lines(await _export(client, auditor, t["slug"]), await _jwks(client)).ok

    async def test_time_range_export_starts_mid_chain(self, client, make_tenant, auditor):
        t = await make_tenant(onboard=True)
        full = [json.loads(x) for x in await _export(client, auditor, t["slug"])]
        start = full[3]["ts"]
        lines = await _export(client, auditor, t["slug"], **{"from": start})
        objs = [json.loads(x) for x in lines]
        assert objs[0]["first_seq"] == 3 and objs[0]["prev_hash"] == full[2]["hash"]
        assert verify_lines(lines, await _jwks(client)).ok

    async def test_export_is_audited_and_csv_is_readable(self, client, make_tenant, auditor, staff_headers):
        t = await make_tenant()
        csv_resp = await client.get(
            "/api/v1/audit/export", params={"stream": t["slug"], "format": "csv"}, headers=auditor
        )
        rows = csv_resp.text.splitlines()
        assert rows[0].startswith("seq,ts,stream,actor") and len(rows) == 2 and "tenant.created" in rows[1]
        platform = await client.get("/api/v1/audit/platform", headers=auditor)
        exported = [e for e in platform.json() if e["action"] == "audit.exported"]
        assert exported[-1]["target"] == f"audit:{t['slug']}"

    async def test_bad_parameters_and_roles(self, client, make_tenant, auditor, issue_token, staff_headers):
        t = await make_tenant()
        bad = await client.get(
            "/api/v1/audit/export", params={"stream": t["slug"], "from": "yesterday", "format": "xml"}, headers=auditor
        )
        assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} == {"from", "format"}
        merchant = {"Authorization": f"Bearer {await issue_token('merchant_admin', t['slug'])}"}
        assert (
            await client.get("/api/v1/audit/export", params={"stream": t["slug"]}, headers=merchant)
        ).status_code == 403
        missing = await client.get("/api/v1/audit/export", params={"stream": "nobody-here"}, headers=auditor)
        assert missing.status_code == 404


class TestTampering:
    @pytest.fixture
    async def exported(self, client, make_tenant, auditor):
        t = await make_tenant(onboard=True)
        return await _export(client, auditor, t["slug"]), await _jwks(client)

    def _changed(self, lines: list[str], n: int, **changes) -> list[str]:
        out = list(lines)
        out[n - 1] = json.dumps(json.loads(out[n - 1]) | changes)
        return out

    async def test_changed_entry(self, exported):
        lines, jwks = exported
        verdict = verify_lines(self._changed(lines, 3, actor="user:mallory@evil.test"), jwks)
        assert (verdict.ok, verdict.line) == (False, 3) and "changed" in verdict.reason

    async def test_deleted_entry(self, exported):
        lines, jwks = exported
        verdict = verify_lines(lines[:3] + lines[4:], jwks)
        assert (verdict.ok, verdict.line) == (False, 4)

    async def test_reordered_entries(self, exported):
        lines, jwks = exported
        swapped = [*lines[:2], lines[3], lines[2], *lines[4:]]
        assert verify_lines(swapped, jwks).line == 3

    async def test_cut_file(self, exported):
        lines, jwks = exported
        verdict = verify_lines(lines[:-1], jwks)
        assert not verdict.ok and verdict.line == len(lines) - 1

    async def test_forged_checkpoint(self, exported):
        lines, jwks = exported
        last = json.loads(lines[-1])
        forged = self._changed(lines, len(lines), signed_at="2020-01-01T00:00:00.000000Z")
        verdict = verify_lines(forged, jwks)
        assert (verdict.ok, verdict.line) == (False, len(lines)) and "signature" in verdict.reason
        unknown = self._changed(lines, len(lines), key_id="nobody")
        assert verify_lines(unknown, jwks).line == len(lines)
        assert last["type"] == "checkpoint"

    async def test_cli_names_the_line(self, exported, tmp_path):
        lines, jwks = exported
        keys = tmp_path / "keys.json"
        keys.write_text(json.dumps(jwks))
        good = tmp_path / "good.jsonl"
        good.write_text("\n".join(lines) + "\n")
        bad = tmp_path / "bad.jsonl"
        bad.write_text("\n".join(self._changed(lines, 5, action="tenant.deleted")) + "\n")
        ok = CliRunner().invoke(bpoctl, ["audit", "verify", str(good), "--keys", str(keys)])
        assert ok.exit_code == 0 and ok.output.startswith("OK: 6 entries")
        refused = CliRunner().invoke(bpoctl, ["audit", "verify", str(bad), "--keys", str(keys)])
        assert refused.exit_code == 1 and refused.output.startswith("line 5:")

    async def test_a_changed_header_range_is_named_at_line_1(self, exported, tmp_path):
        """Acceptance 4: the final checkpoint signs the header, so moving its ``from`` is refused at line 1."""
        lines, jwks = exported
        assert json.loads(lines[-1])["header"] and json.loads(lines[0])["format"] == "bpo-audit-export/2"
        keys = tmp_path / "keys.json"
        keys.write_text(json.dumps(jwks))
        moved = tmp_path / "moved.jsonl"
        moved.write_text("\n".join(self._changed(lines, 1, **{"from": "2026-01-01T00:00:00.000000Z"})) + "\n")
        refused = CliRunner().invoke(bpoctl, ["audit", "verify", str(moved), "--keys", str(keys)])
        assert refused.exit_code == 1 and refused.output.startswith("line 1: the header was changed"), refused.output
        verdict = verify_lines(self._changed(lines, 1, entries=5, last_seq=5), jwks)
        assert (verdict.ok, verdict.line) == (False, 1)


class TestSigningKeyRotation:
    async def test_exports_before_and_after_rotation_verify(
        self, client, make_tenant, auditor, dbs, keyring, staff_headers
    ):
        t = await make_tenant()
        before = await _export(client, auditor, t["slug"])
        async with dbs.control_transaction() as session:
            new_key, retired = await checkpoints.rotate_signing_key(session, keyring)
        assert json.loads(before[-1])["key_id"] in retired
        renamed = await client.patch(f"/api/v1/tenants/{t['slug']}", json={"name": "After"}, headers=staff_headers)
        assert renamed.status_code == 200
        after = await _export(client, auditor, t["slug"])
        assert json.loads(after[-1])["key_id"] == new_key.kid
        jwks = await _jwks(client)
        statuses = {k["kid"]: k["status"] for k in jwks["keys"]}
        assert statuses[new_key.kid] == "active" and all(statuses[k] == "retired" for k in retired)
        assert verify_lines(before, jwks).ok and verify_lines(after, jwks).ok
