# Sourced by the CI lanes: find a Python of a given version and build a pinned venv for a lane (idempotent).

# find_python VERSION: prints python<VERSION> from PATH or pyenv's VERSION.x, or nothing.
find_python() {
  local version=$1 candidate
  for candidate in "$(command -v "python$version" || true)" \
    $(ls -d "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/"$version".*/bin/python"$version" 2>/dev/null); do
    if [ -n "$candidate" ] && "$candidate" -c "import sys" >/dev/null 2>&1; then echo "$candidate"; return; fi
  done
}

# lane_venv PYTHON VENV REQUIREMENTS CONSTRAINTS [EXTRA_REQUIREMENT...]: the venv with this package installed
# editable and ishowtts_interfaces built into it; rebuilt when the requirements or constraints change.
lane_venv() {
  local python=$1 venv=$2 requirements=$3 constraints=$4
  shift 4
  local stamp="$venv/.bootstrapped"
  if [ ! -f "$stamp" ] || [ "$constraints" -nt "$stamp" ] || [ "$requirements" -nt "$stamp" ]; then
    echo "building $venv with $python $*"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q -c "$constraints" -r "$requirements" "$@"
    "$venv/bin/python" -m pip install -q --no-deps -e .
    touch "$stamp"
  fi
  tools/build_interfaces.sh "$venv"
}
