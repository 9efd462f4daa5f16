"""The benchmark's outputs: a markdown table and a PNG plot of a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _cell(value: float, spec: str) -> str:
    """A table cell: blank where the figure does not apply (NaN: no floor for upstream, no speedup baseline)."""
    return "" if value != value else format(value, spec)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"device: {report['device']}, torch {report['torch']}, checkpoint {report['checkpoint']}, "
        f"matmul {report['matmul_tflops']:.0f} TFLOP/s",
        "",
        "| impl | text | NFE | audio s | synth s | RTF | TTFA ms | step ms | floor ms | step/floor | peak GiB "
        "| speedup |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        ratio = r["step_ms"] / r["floor_step_ms"]
        lines.append(
            f"| {r['impl']} | {r['text']} | {r['nfe']} | {r['audio_s']:.2f} | {r['synth_s']:.4f} | {r['rtf']:.5f} | "
            f"{r['ttfa_s'] * 1e3:.1f} | {_cell(r['step_ms'], '.2f')} | {_cell(r['floor_step_ms'], '.2f')} | "
            f"{_cell(ratio, '.2f')} | {_cell(r['peak_mem_gib'], '.2f')} | {_cell(r['speedup'], '.1f')} |"
        )
    for key in ("engine", "streaming", "concurrency", "quality", "upstream_default"):
        if key in report:
            lines.append(f"\n{key}: {json.dumps(report[key], default=float)}")
    for key in ("engine_peak_mem_gib", "engine_peak_reserved_gib", "startup"):
        if key in report:
            lines.append(f"{key}: {report[key]}")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rtf, ax_ttfa) = plt.subplots(1, 2, figsize=(11, 4))
    rows = report["rows"]
    for impl in sorted({r["impl"] for r in rows}):
        for text in sorted({r["text"] for r in rows}):
            chosen = sorted((r for r in rows if r["impl"] == impl and r["text"] == text), key=lambda r: r["nfe"])
            if not chosen:
                continue
            nfe = [r["nfe"] for r in chosen]
            style = "-o" if impl == "engine" else "--s"
            ax_rtf.plot(nfe, [r["rtf"] for r in chosen], style, label=f"{impl} {text}")
            ax_ttfa.plot(nfe, [r["ttfa_s"] * 1e3 for r in chosen], style, label=f"{impl} {text}")
    for axis, label in ((ax_rtf, "RTF (lower is faster)"), (ax_ttfa, "time to first audio, ms")):
        axis.set_xlabel("NFE (flow steps)")
        axis.set_ylabel(label)
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
    ax_rtf.legend(fontsize=7)
    fig.suptitle(f"ishowtts_ros vs upstream f5-tts on {report['device']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
