#!/usr/bin/env bash
# The ROS and Wyoming-in-node tests against another ROS 2 distro's rclpy wheels, in their own venv:
#   tools/ci/ros_lane.sh jazzy 3.12
# uses requirements-<distro>.txt pinned by constraints/<distro>.txt, with ishowtts_interfaces built for that distro.
# Skips, saying why, where no such Python is.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/ci/venv.sh
distro=$1 version=$2
python=$(find_python "$version")
if [ -z "$python" ]; then
  echo "$distro lane skipped: no Python $version on this machine (python$version or pyenv's $version.x)"
  exit 0
fi
venv=".venv-$distro"
lane_venv_or_skip "$distro lane" "$python" "$venv" "requirements-$distro.txt" "constraints/$distro.txt"
echo "$distro lane: $("$venv/bin/python" -c 'import sys, rclpy, importlib.metadata as m; print(f"Python {sys.version.split()[0]}, rclpy", m.version("ros-rclpy"))')"
"$venv/bin/python" -m pytest -q -p no:cacheprovider test/ros/test_node.py test/ros/test_say_action.py \
  test/ros/test_reliability.py test/ros/test_player.py test/wyoming/test_wyoming.py -m ros "${@:3}"
