#!/usr/bin/env bash
# Like tools/device_bench.sh, in a venv on the lent GPU machine that also holds ROS 2 Jazzy's rclpy wheels and a
# built ishowtts_interfaces, both carried in .whl/ros/ (docs/BENCHMARKS.md "How to reproduce" says how they are made):
#   tools/device_ros.sh python3 -m ishowtts_ros.bench.node_exit --out "$OUT"
set -euo pipefail
venv=/tmp/jv  # the prefix ishowtts_interfaces was built for (its libraries' run paths name it)
if [ ! -x "$venv/bin/python3" ]; then
  python3 -m venv "$venv"
  # the device's torch (and numpy) stay where the image installed them
  python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
    >"$("$venv/bin/python3" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/device-torch.pth"
  "$venv/bin/python3" -m pip install -q --no-index --no-deps .whl/ros/*.whl
  tar xzf .whl/ros/ishowtts_interfaces-jv.tgz -C "$venv"
fi
PATH="$venv/bin:$PATH" tools/device_bench.sh "$@"
