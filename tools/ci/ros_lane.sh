#!/usr/bin/env bash
# The ROS and Wyoming-in-node tests against another ROS 2 distro's rclpy wheels, in their own venv:
#   tools/ci/ros_lane.sh jazzy 3.12
# uses requirements-<distro>.txt pinned by constraints/<distro>.txt, with ishowtts_interfaces built for that distro. Skips, saying why, where no such Python is.
set -euo pipefail
cd "$(dirname "$0")/../.."
distro=$1 version=$2
python=""
for candidate in "$(command -v "python$version" || true)" \
  $(ls -d "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/"$version".*/bin/python"$version" 2>/dev/null); do
  if [ -n "$candidate" ] && "$candidate" -c "import sys" >/dev/null 2>&1; then python=$candidate; break; fi
done
if [ -z "$python" ]; then
  echo "$distro lane skipped: no Python $version on this machine (python$version or pyenv's $version.x)"
  exit 0
fi
venv=".venv-$distro"
stamp="$venv/.bootstrapped"
if [ ! -f "$stamp" ] || [ "constraints/$distro.txt" -nt "$stamp" ] || [ "requirements-$distro.txt" -nt "$stamp" ]; then
  echo "$distro lane: building $venv with $python"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -c "constraints/$distro.txt" -r "requirements-$distro.txt"
  "$venv/bin/python" -m pip install -q --no-deps -e .
  touch "$stamp"
fi
tools/build_interfaces.sh "$venv"
echo "$distro lane: $("$venv/bin/python" -c 'import sys, rclpy, importlib.metadata as m; print(f"Python {sys.version.split()[0]}, rclpy", m.version("ros-rclpy"))')"
"$venv/bin/python" -m pytest -q -p no:cacheprovider test/ros/test_node.py test/ros/test_say_action.py \
  test/ros/test_reliability.py test/ros/test_player.py test/wyoming/test_wyoming.py -m ros "${@:3}"
