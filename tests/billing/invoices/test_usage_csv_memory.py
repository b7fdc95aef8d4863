"""`bpoctl bench usage-csv` at a small size: 5,000 raw contacts of one month stream from a real server
process as one CSV row each, rows per resolution as inserted, with RSS growth far below 50 MB (the
benchmark does 1,000,000; timing is never asserted)."""

from __future__ import annotations

import os

from tests.benchmarks.usage_csv import ROOT, measure


def test_usage_csv_streams_every_row_in_bounded_memory(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BPO_")}
    env |= {"BPO_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    figures = measure(env, 5_000, echo=lambda _line: None)  # checks the rows per resolution itself
    assert figures["rows"] == 5_000
    assert figures["rss_samples"] > 0
    assert figures["rss_growth_mb"] < 50, figures
