"""``colcon build`` as a ROS user runs it installs what ``ros2 run`` and ``ros2 launch`` look for."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("colcon") is None and not (ROOT / ".venv/bin/colcon").exists(), reason="no colcon")
def test_colcon_build_installs_scripts_launch_config_and_the_ament_index(tmp_path):
    colcon = shutil.which("colcon") or str(ROOT / ".venv/bin/colcon")
    result = subprocess.run(
        [colcon, "--log-base", str(tmp_path / "log"), "build", "--paths", str(ROOT),
         "--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    prefix = tmp_path / "install" / "ishowtts_ros"
    for script in ("tts_node", "tts_player", "ishowtts"):  # ros2 run ishowtts_ros <script>
        assert (prefix / "lib" / "ishowtts_ros" / script).is_file(), script
    share = prefix / "share" / "ishowtts_ros"
    assert (share / "launch" / "ishowtts.launch.py").is_file()
    assert {p.name for p in (share / "config").iterdir()} >= {"ishowtts.yaml", "voices.yaml"}
    assert (share / "package.xml").is_file()
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "ishowtts_ros").is_file()
    site = next(prefix.glob("lib/python3*/site-packages"))
    assert (site / "ishowtts_ros" / "engines" / "f5" / "kernels" / "position_conv.py").is_file()
