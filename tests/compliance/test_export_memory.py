"""Acceptance 3 at a smaller size: streaming a 50,000-entry export from a real server process keeps
its RSS growth far below 50 MB (the benchmark does 1,000,000; timing is never asserted)."""

from __future__ import annotations

import os

from tests.benchmarks.audit_export import ROOT, measure


def test_a_large_export_streams_in_constant_memory(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPO_")}
    env |= {"BPO_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    figures = measure(env, 50_000, echo=lambda _line: None)
    assert figures["lines"] == 50_003
    assert figures["rss_samples"] > 0
    assert figures["rss_growth_mb"] < 50, figures
