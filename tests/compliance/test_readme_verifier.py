"""Acceptance 1: an export verifies with ``bpoctl audit verify`` and with a verifier written only from
the README; changing, deleting or reordering any one line makes both refuse it, naming the line."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from control_plane.cli import main as bpoctl
from tests.compliance import readme_verifier

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def auditor_headers(issue_token) -> dict[str, str]:
    return {"Authorization": f"Bearer {await issue_token('compliance_officer')}"}


@pytest.fixture
async def export(client, make_tenant, dbs, keyring, issue_token, staff_headers) -> tuple[list[str], dict]:
    """An export with stored checkpoints mid-file, non-ASCII data and the export-time checkpoint."""
    from compliance.checkpoints import checkpoint_stream

    t = await make_tenant(onboard=True)
    async with dbs.control_transaction() as session:
        await checkpoint_stream(session, keyring, t["slug"])
    resp = await client.patch(f"/api/v1/tenants/{t['slug']}", json={"name": "Größe & 尺码"}, headers=staff_headers)
    assert resp.status_code == 200
    auditor = {"Authorization": f"Bearer {await issue_token('compliance_officer')}"}
    resp = await client.get("/api/v1/audit/export", params={"stream": t["slug"]}, headers=auditor)
    assert resp.status_code == 200
    jwks = (await client.get("/api/v1/audit/keys")).json()
    return resp.text.splitlines(), jwks


def _bpoctl(lines: list[str], jwks: dict, tmp_path: Path) -> tuple[bool, int | None]:
    keys, file = tmp_path / "keys.json", tmp_path / "export.jsonl"
    keys.write_text(json.dumps(jwks))
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = CliRunner().invoke(bpoctl, ["audit", "verify", str(file), "--keys", str(keys)]).output
    if out.startswith("OK"):
        return True, None
    assert out.startswith("line "), out
    return False, int(out.split()[1].rstrip(":"))


def _both(lines, jwks, tmp_path) -> tuple[tuple[bool, int | None], tuple[bool, int | None]]:
    ok, line, _ = readme_verifier.verify(lines, jwks)
    return (ok, line), _bpoctl(lines, jwks, tmp_path)


def _changed(line: str) -> str:
    obj = json.loads(line)
    field = {"header": "prev_hash", "entry": "actor", "checkpoint": "signed_at"}[obj["type"]]
    obj[field] = {"prev_hash": "f" * 64, "actor": "user:mallory@evil.test"}.get(field, "2020-01-01T00:00:00.000000Z")
    return json.dumps(obj, ensure_ascii=False)


class TestReadmeVerifier:
    def test_it_is_written_from_the_readme_alone(self):
        source = (ROOT / "tests/compliance/readme_verifier.py").read_text()
        imported = {
            (n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
            for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.Import | ast.ImportFrom)
            for a in n.names
        }
        assert imported == {"__future__", "base64", "hashlib", "json", "cryptography"}
        readme = (ROOT / "README.md").read_text()
        section = readme.split("## Audit export format", 1)[1]
        for term in (
            "Canonical JSON",
            "prev_checkpoint",
            "base64url",
            "last line is a checkpoint",
            "`kid`",
            "H(canonical(header))",
            "bpo-audit-export/1",
        ):
            assert term in section

    async def test_a_good_export_verifies_with_both(self, export, tmp_path):
        lines, jwks = export
        kinds = [json.loads(x)["type"] for x in lines]
        assert kinds.count("checkpoint") == 2 and kinds[-1] == "checkpoint"
        assert _both(lines, jwks, tmp_path) == ((True, None), (True, None))

    async def test_changing_any_line_is_refused_at_that_line(self, export, tmp_path):
        lines, jwks = export
        for i in range(len(lines)):
            tampered = [*lines[:i], _changed(lines[i]), *lines[i + 1 :]]
            readme, ours = _both(tampered, jwks, tmp_path)
            # A changed header is named at line 1: the last line signs its hash.
            assert readme == ours == (False, i + 1), (i, readme, ours)

    @pytest.mark.parametrize("field", ["stream", "from", "to", "exported_at", "first_seq", "entries", "format"])
    async def test_a_changed_header_field_is_refused_at_line_1(self, export, tmp_path, field):
        lines, jwks = export
        header = json.loads(lines[0])
        header[field] = {
            "stream": "someone-else",
            "from": "2020-01-01T00:00:00.000000Z",
            "to": "2020-02-01T00:00:00.000000Z",
            "exported_at": "2020-01-01T00:00:00.000000Z",
            "format": "bpo-audit-export/1",
        }.get(field, header[field] + 1 if isinstance(header[field], int) else None)
        tampered = [json.dumps(header, ensure_ascii=False), *lines[1:]]
        assert _both(tampered, jwks, tmp_path) == ((False, 1), (False, 1))

    async def test_an_empty_export_signs_its_header(self, client, auditor_headers, tmp_path):
        resp = await client.get(
            "/api/v1/audit/export",
            params={"stream": "platform", "from": "2001-01-01T00:00:00Z", "to": "2001-02-01T00:00:00Z"},
            headers=auditor_headers,
        )
        lines, jwks = resp.text.splitlines(), (await client.get("/api/v1/audit/keys")).json()
        final = json.loads(lines[-1])
        assert len(lines) == 2 and (final["seq"], final["hash"]) == (None, None) and "header" in final
        assert _both(lines, jwks, tmp_path) == ((True, None), (True, None))
        moved = json.loads(lines[0]) | {"from": "2026-01-01T00:00:00.000000Z", "to": "2027-01-01T00:00:00.000000Z"}
        assert _both([json.dumps(moved), lines[1]], jwks, tmp_path) == ((False, 1), (False, 1))
        assert _both(lines[:1], jwks, tmp_path) == ((False, 1), (False, 1))  # the signing line cut off

    async def test_a_format_1_export_still_verifies(self, export, dbs, keyring, tmp_path):
        """An export made before the header was signed: its last checkpoint has the five-key body."""
        from compliance.checkpoints import sign_checkpoint

        lines, jwks = export
        header, final = json.loads(lines[0]), json.loads(lines[-1])
        header["format"] = "bpo-audit-export/1"
        async with dbs.control_transaction() as session:
            old = await sign_checkpoint(
                session,
                keyring,
                stream=final["stream"],
                seq=final["seq"],
                hash_=final["hash"],
                prev_checkpoint=final["prev_checkpoint"],
                store=False,
            )
        legacy = [json.dumps(header, ensure_ascii=False), *lines[1:-1], json.dumps(old)]
        assert _both(legacy, jwks, tmp_path) == ((True, None), (True, None))
        assert readme_verifier.verify(legacy, jwks)[2] == "ok (format 1)"
        (tmp_path / "old.jsonl").write_text("\n".join(legacy) + "\n")
        (tmp_path / "keys.json").write_text(json.dumps(jwks))
        out = (
            CliRunner()
            .invoke(bpoctl, ["audit", "verify", str(tmp_path / "old.jsonl"), "--keys", str(tmp_path / "keys.json")])
            .output
        )
        assert "format 1: its header is not signed" in out
        # A new export relabelled format 1 keeps its signed header: the relabelling is line 1's change.
        relabelled = [json.dumps(header, ensure_ascii=False), *lines[1:]]
        assert _both(relabelled, jwks, tmp_path) == ((False, 1), (False, 1))

    async def test_deleting_any_line_is_refused(self, export, tmp_path):
        lines, jwks = export
        for i in range(len(lines)):
            tampered = lines[:i] + lines[i + 1 :]
            readme, ours = _both(tampered, jwks, tmp_path)
            assert readme[0] is False and ours[0] is False, i
            assert readme[1] == ours[1], (i, readme, ours)
            # The gap shows at the line that took the deleted one's place, or at the first checkpoint
            # whose chain it broke, or (the last line deleted) at the new end.
            assert min(i + 1, len(tampered)) <= readme[1] <= len(tampered) or (i, readme[1]) == (0, 1), (i, readme)

    async def test_reordering_any_two_neighbours_is_refused(self, export, tmp_path):
        lines, jwks = export
        for i in range(len(lines) - 1):
            tampered = [*lines[:i], lines[i + 1], lines[i], *lines[i + 2 :]]
            readme, ours = _both(tampered, jwks, tmp_path)
            assert readme == ours, (i, readme, ours)
            assert readme[0] is False and readme[1] in (i + 1, i + 2), (i, readme)
