# Sourced by the CI lanes: find a Python of a given version and build a pinned venv for a lane (idempotent).

# find_python VERSION: prints python<VERSION> from PATH or pyenv's VERSION.x, or nothing.
find_python() {
  local version=$1 candidate
  for candidate in "$(command -v "python$version" || true)" \
    $(ls -d "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/"$version".*/bin/python"$version" 2>/dev/null); do
    if [ -n "$candidate" ] && "$candidate" -c "import sys" >/dev/null 2>&1; then echo "$candidate"; return; fi
  done
}

# pip_install VENV ARGS...: pip install, quiet, retried: a lane downloads several GB of torch and CUDA wheels, and
# a dropped connection must not fail CI. Returns non-zero only when all three attempts failed.
pip_install() {
  local venv=$1 attempt
  shift
  for attempt in 1 2 3; do
    if "$venv/bin/python" -m pip install -q --retries 10 --timeout 120 "$@" 2>&1 | grep -v "is ignored: it is neither"; \
       [ "${PIPESTATUS[0]}" -eq 0 ]; then
      return 0
    fi
    echo "pip install failed (attempt $attempt of 3)"
    sleep $((attempt * 10))
  done
  return 1
}

# lane_venv PYTHON VENV REQUIREMENTS CONSTRAINTS [EXTRA_REQUIREMENT...]: the venv with this package installed
# editable and ishowtts_interfaces built into it; rebuilt when the requirements or constraints change. Returns 3
# when the packages could not be installed (the lane then says so and is skipped).
lane_venv() {
  local python=$1 venv=$2 requirements=$3 constraints=$4
  shift 4
  local stamp="$venv/.bootstrapped"
  if [ ! -f "$stamp" ] || [ "$constraints" -nt "$stamp" ] || [ "$requirements" -nt "$stamp" ]; then
    echo "building $venv with $python $*"
    rm -rf "$venv"
    "$python" -m venv "$venv" || return 1
    pip_install "$venv" --upgrade pip || return 3
    pip_install "$venv" -c "$constraints" -r "$requirements" "$@" || return 3
    "$venv/bin/python" -m pip install -q --no-deps -e . || return 1
    touch "$stamp"
  fi
  tools/build_interfaces.sh "$venv" || return 1
}

# lane_venv_or_skip LANE ARGS...: lane_venv, or, when its packages cannot be installed, a line saying the lane is
# skipped and why, and exit 0 (a dropped download or a full disk is not a test failure; the lane's tests have not run).
lane_venv_or_skip() {
  local lane=$1 status=0
  shift
  lane_venv "$@" || status=$?
  if [ "$status" -eq 3 ]; then
    echo "$lane skipped: its packages could not be installed after 3 attempts (network or disk, see pip above);" \
      "its tests did not run"
    exit 0
  fi
  return "$status"
}
