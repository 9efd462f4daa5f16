"""The command-line tools as users run them (``ishowtts say``, ``normalize``, ``doctor``, ``download``, ``bench``):
subprocesses, real engines. They run wherever the package does; the ones that need torch and f5-tts (the F5 engine,
its checkpoints, the benchmark) are skipped where those are absent, and the header says why."""

from support.markers import MISSING_F5 as MISSING

#: Files that import torch themselves.
collect_ignore = ["test_download.py", "test_bench.py"] if MISSING else []


def pytest_report_header(config):
    if MISSING:
        return f"test/tools: the F5 tests skipped: {', '.join(MISSING)} not installed"
    return None
