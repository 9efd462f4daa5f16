#!/usr/bin/env bash
# The JetPack 6 lane: Python 3.10 (Ubuntu 22.04) with the torch of JetPack 6.1 (2.5.1) or 6.2 (2.8.0), on the CPU:
#   tools/ci/jetpack_lane.sh 2.5.1
# runs the engine and unit tests (one compiled graph for all blocks, the Triton kernel in Triton's interpreter and
# compiled offline for sm_87/sm_90, the engine without Triton) and the node and say-action suites on Humble's rclpy
# API surface. torch comes from PyPI here (NVIDIA's wheels are aarch64); everything else is pinned by
# constraints/jetpack.txt. Skips, saying why, where no Python 3.10 is.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/ci/venv.sh
torch_version=$1
python=$(find_python 3.10)
if [ -z "$python" ]; then
  echo "JetPack lane (torch $torch_version) skipped: no Python 3.10 on this machine (python3.10 or pyenv's 3.10.x)"
  exit 0
fi
venv=".venv-jetpack-$torch_version"
lane_venv_or_skip "JetPack lane (torch $torch_version)" "$python" "$venv" requirements-jetpack.txt constraints/jetpack.txt \
  "torch==$torch_version" "torchaudio==$torch_version"
echo "JetPack lane: $("$venv/bin/python" -c 'import sys, torch, importlib.util as u; t = u.find_spec("triton") and __import__("triton").__version__; print(f"Python {sys.version.split()[0]}, torch {torch.__version__}, Triton {t}")')"
"$venv/bin/python" -m pytest -q -p no:cacheprovider test/unit test/engine "${@:2}"
PYTHONPATH=test/support/humble_api "$venv/bin/python" -m pytest -q -p no:cacheprovider test/ros/test_node.py \
  test/ros/test_say_action.py "${@:2}"
