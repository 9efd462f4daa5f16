"""``ishowtts doctor`` as users run it: one finding per check, and an exit code that says whether the configured
engine can run here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support.markers import needs_f5

pytestmark = pytest.mark.slow  # each case starts the CLI


def doctor(*args: str, env: dict | None = None) -> tuple[int, list[dict]]:
    result = subprocess.run(
        [sys.executable, "-m", "ishowtts_ros.cli", "doctor", "--json", "--quick", *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
    )  # fmt: skip
    return result.returncode, json.loads(result.stdout)


def test_doctor_reports_every_check_and_auto_runs_here(tmp_path):
    code, findings = doctor(env={"HF_HOME": str(tmp_path / "hf")})
    checks = {f["check"]: f for f in findings}
    for name in ("python", "torch", "cuda", "triton", "f5 weights", "compile cache", "espeak-ng", "audio output",
                 "ros 2", "wyoming", "engine"):  # fmt: skip
        assert name in checks, name
    assert all(f["status"] in ("ok", "warn", "fail", "info") for f in findings)
    assert code == 0 and checks["engine"]["detail"].startswith("auto -> espeak (f5 is not ready")
    assert (
        "ishowtts download" in checks["f5 weights"]["detail"] and str(tmp_path / "hf") in checks["f5 weights"]["detail"]
    )
    assert "rclpy" in checks["ros 2"]["detail"] and "distro" in checks["ros 2"]["detail"]


def test_doctor_exits_non_zero_when_the_configured_engine_cannot_run(tmp_path):
    code, findings = doctor("--engine", "f5", env={"HF_HOME": str(tmp_path / "hf")})
    assert (
        code == 1
        and findings[-1]["status"] == "fail"
        and "not in the local Hugging Face cache" in findings[-1]["detail"]
    )
    code, findings = doctor("--engine", "espeak")
    assert code == 0 and findings[-1] == {"check": "engine", "status": "ok", "detail": "espeak -> espeak"}


@needs_f5
def test_doctor_passes_an_f5_that_can_run():
    code, findings = doctor("--engine", "f5", "--checkpoint", "random:tiny")
    assert code == 0 and findings[-1]["detail"] == "f5 -> f5"
