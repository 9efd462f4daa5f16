"""The Wyoming tests need the wyoming package (pip); without it the folder is skipped and the header says why."""

import importlib.util

MISSING = [name for name in ("wyoming", "zeroconf") if importlib.util.find_spec(name) is None]
collect_ignore_glob = ["test_*.py"] if MISSING else []


def pytest_report_header(config):
    return (
        f"test/wyoming skipped: {', '.join(MISSING)} not installed (pip install 'ishowtts_ros[wyoming]')"
        if MISSING
        else None
    )
