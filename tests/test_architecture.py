"""The shape of the code, checked by tools rather than by eye (README, Architecture): no import cycle
between modules (grimp, the graph import-linter uses: function-level and TYPE_CHECKING imports
count too), no module over 500 lines, billing's dependence on SLA kept to a handful of imports.
The layer contracts themselves are import-linter's, run by `make test` (`lint-imports`)."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
DOMAINS = ("control_plane", "tenants", "billing", "sla", "compliance")


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph(*DOMAINS)
    cycles = sorted(
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if graph.chain_exists(importer=imported, imported=importer)
    )
    assert cycles == [], "imports on a cycle: " + ", ".join(f"{a} -> {b}" for a, b in cycles)


def test_no_module_is_longer_than_500_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for d in DOMAINS
        for p in (ROOT / d).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 500
    }
    assert long == {}


def _imports_of(package: str, target: str) -> list[str]:
    found = []
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names if n.split(".")[0] == target]
    return found


def test_billing_imports_sla_in_at_most_five_places():
    """Rating uses the SLA rules (evaluation, credits); invoices ask for the excluded days and terms."""
    places = _imports_of("billing", "sla")
    assert 0 < len(places) <= 5, places
