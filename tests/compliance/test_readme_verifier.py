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
        for term in ("Canonical JSON", "prev_checkpoint", "base64url", "last line is a checkpoint", "`kid`"):
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
            # A changed header anchor shows on the first entry, which no longer links to it.
            expected = 2 if i == 0 else i + 1
            assert readme == ours == (False, expected), (i, readme, ours)

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
