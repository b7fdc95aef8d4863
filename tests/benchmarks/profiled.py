"""Run ``control_plane.cli`` under cProfile and write the stats when the process is asked to stop.

``python -m tests.benchmarks.profiled OUT serve ...``: uvicorn re-raises SIGTERM/SIGINT after its
graceful shutdown, so ``python -m cProfile`` never reaches its own dump; the handler installed here
(which uvicorn restores before re-raising) writes the stats first.
"""

import cProfile
import os
import signal
import sys

out = sys.argv[1]
profiler = cProfile.Profile()


def _dump(signum, frame) -> None:
    profiler.disable()
    profiler.dump_stats(out)
    os._exit(0)


signal.signal(signal.SIGTERM, _dump)
signal.signal(signal.SIGINT, _dump)
sys.argv = ["bpoctl", *sys.argv[2:]]
from control_plane.cli import main  # noqa: E402

profiler.enable()
try:
    main()
finally:
    profiler.disable()
    profiler.dump_stats(out)
