"""The benchmarks of ``bpoctl bench`` still run, at toy sizes, and their figures add up.

No timing is asserted (these machines are shared and noisy): only that each benchmark completes,
counts what it was asked to count and reports figures consistent with each other.
"""

from __future__ import annotations

import pytest

from tests.conftest import PG_URL

DATABASES = [None] + ([PG_URL] if PG_URL else [])


@pytest.mark.parametrize("database", DATABASES, ids=lambda d: "postgres" if d else "sqlite")
def test_bench_ingest(database):
    from tests.benchmarks.ingest import run_benchmark

    lines: list[str] = []
    figures = run_benchmark(database=database, contacts=3000, concurrency=2, as_json=True, echo=lines.append)
    assert figures["accepted"] == 3000
    assert figures["database"] == ("postgresql" if database else "sqlite")
    assert figures["ratio"] == pytest.approx(figures["contacts_per_second"] / figures["raw_rows_per_second"], abs=2e-3)
    if database:  # PostgreSQL: the COPY the server uses is measured too
        assert figures["ratio_to_copy"] == pytest.approx(
            figures["contacts_per_second"] / figures["raw_copy_rows_per_second"], abs=2e-3
        )
    else:
        assert figures["raw_copy_rows_per_second"] is None and figures["ratio_to_copy"] is None
    assert 0 < figures["p50_batch_ms"] <= figures["p99_batch_ms"]
    assert 50 < figures["peak_rss_mb"] < 2000
    assert lines[-1].startswith('{"database"')


@pytest.mark.parametrize("database", DATABASES, ids=lambda d: "postgres" if d else "sqlite")
def test_bench_invoices(database):
    from tests.benchmarks.invoices import run_benchmark

    figures = run_benchmark(database=database, tenants=4, contacts=60, as_json=False, echo=lambda _: None)
    assert figures["invoices"] == 4
    assert figures["redraft_unchanged"] == 4
    assert figures["invoice_lines"] >= 4


def test_bench_sla():
    from tests.benchmarks.sla import run_benchmark

    figures = run_benchmark(contacts=2000, runs=3, as_json=False, echo=lambda _: None)
    assert 0 < figures["median_ms"] <= figures["p90_ms"]
    assert 0 < figures["cold_median_ms"] <= figures["cold_p90_ms"]
