"""``colcon build`` of both packages, as the README tells a ROS user to run it, installs what ``ros2 run`` and
``ros2 launch`` look for, and an ``ishowtts_interfaces`` that imports from its install tree. The underlay here is the
venv (its ROS wheels), where a robot has ``/opt/ros/<distro>``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("colcon") is None and not (ROOT / ".venv/bin/colcon").exists(), reason="no colcon")
def test_colcon_build_installs_both_packages(tmp_path):
    colcon = shutil.which("colcon") or str(ROOT / ".venv/bin/colcon")
    underlay = {"AMENT_PREFIX_PATH": sys.prefix, "CMAKE_PREFIX_PATH": sys.prefix}
    result = subprocess.run(
        [colcon, "--log-base", str(tmp_path / "log"), "build", "--paths", str(ROOT), str(ROOT / "ishowtts_interfaces"),
         "--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install"),
         "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env={**os.environ, **underlay},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert_interfaces_installed(tmp_path / "install" / "ishowtts_interfaces")
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


def assert_interfaces_installed(prefix: Path) -> None:
    share = prefix / "share" / "ishowtts_interfaces"
    assert (share / "action" / "Say.action").is_file() and (share / "msg" / "AudioChunk.msg").is_file()
    site = next(prefix.glob("lib/python3*/site-packages"))
    probe = (
        "import ishowtts_interfaces; from ishowtts_interfaces.action import Say; "
        "from ishowtts_interfaces.msg import AudioChunk; "
        "print(ishowtts_interfaces.__file__, Say.Goal(text='hi').text, AudioChunk.ENCODING_PCM_S16LE)"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "LD_LIBRARY_PATH": str(prefix / "lib")}
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert imported.returncode == 0, imported.stderr
    where, text, encoding = imported.stdout.split()
    assert where.startswith(str(site)) and text == "hi" and encoding == "pcm_s16le"
