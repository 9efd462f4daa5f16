"""What the launch_testing tests need before they can start: launch_testing (``shared/wheels/ros-launch``, installed
by ``make test``) and the package installed by colcon (``make test`` builds it into ``build/colcon``). Imported
first by such a test module: it skips the module, with the reason, where either is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "build" / "colcon" / "install" / "ishowtts_ros"
REASON = "launch_testing is not installed (a ROS 2 install has it; make test installs it from ../shared)"
launch_testing_actions = pytest.importorskip("launch_testing.actions", reason=REASON)
launch = pytest.importorskip("launch", reason=REASON)
pytest.importorskip("launch_ros", reason=REASON)
if not (INSTALL / "lib" / "ishowtts_ros" / "tts_node").exists():
    pytest.skip(f"the package is not colcon-installed in {INSTALL} (make test does that)", allow_module_level=True)
os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join([str(INSTALL), os.environ.get("AMENT_PREFIX_PATH", "")])
