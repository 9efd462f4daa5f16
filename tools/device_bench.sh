#!/usr/bin/env bash
# Run on a lent GPU machine (the `device` tool) from the repository root, with the f5-tts wheels carried in .whl/
# (docs/BENCHMARKS.md says how they are fetched). The device image has torch 2.11 but not f5-tts; f5-tts's
# training-only imports (wandb, datasets) are stubbed there because inference never uses them.
# Usage: tools/device_bench.sh <command...>   e.g. tools/device_bench.sh python3 -m ishowtts_ros.bench.run --out "$OUT"
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
# the engines are found through the package's entry points, as on an installed system: write its metadata beside it
python3 setup.py -q egg_info --egg-base /tmp/site >/dev/null
mkdir -p /tmp/stubs/wandb /tmp/stubs/datasets
: > /tmp/stubs/wandb/__init__.py
printf 'Dataset = object\n\n\ndef load_from_disk(*args, **kwargs):\n    raise ImportError("datasets is not installed")\n' \
  > /tmp/stubs/datasets/__init__.py
export PYTHONPATH="/tmp/site:$PWD:/tmp/stubs${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-/tmp/ishowtts-inductor}"
"$@"
