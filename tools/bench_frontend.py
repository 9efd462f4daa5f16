"""How long the text front end takes per sentence, on this machine's CPU, over the test corpus (what robots say):
``python tools/bench_frontend.py``. Prints mean, 99th percentile and worst in milliseconds; the budget is 10 ms a
sentence beside ~25 ms to first audio on a GPU."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test" / "unit"))

from frontend_corpus import CORPUS

from ishowtts_ros.core.frontend import speakable


def main() -> None:
    for language, text, _ in CORPUS:  # first use compiles the patterns
        speakable(text, language)
    times = []
    for _ in range(20):
        for language, text, _ in CORPUS:
            started = time.perf_counter()
            speakable(text, language)
            times.append(1e3 * (time.perf_counter() - started))
    times.sort()
    print(f"{len(CORPUS)} sentences x 20: mean {statistics.fmean(times):.3f} ms, "
          f"p99 {times[int(len(times) * 0.99)]:.3f} ms, worst {times[-1]:.3f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
