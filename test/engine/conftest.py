"""The engine tests need torch and f5-tts (pip, or NVIDIA's torch on a Jetson); where they are absent, as in a
plain ``colcon test`` on a ROS install, the folder is skipped and the header says why."""

import importlib.util

MISSING = [name for name in ("torch", "torchaudio", "f5_tts", "vocos") if importlib.util.find_spec(name) is None]
collect_ignore_glob = ["test_*.py"] if MISSING else []


def pytest_report_header(config):
    if MISSING:
        return f"test/engine skipped: {', '.join(MISSING)} not installed (pip install 'ishowtts_ros[f5]')"
    return None
