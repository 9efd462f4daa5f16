"""Shared fixtures: one tiny random-init F5 engine per session (real upstream classes, CPU, fp32)."""

from __future__ import annotations

import pytest

from ishowtts_ros.engine import EngineConfig
from ishowtts_ros.testing import TINY_CHECKPOINT, write_voices_file


@pytest.fixture(scope="session")
def voices_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("voices")
    write_voices_file(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_engine():
    from ishowtts_ros.f5_engine import F5Engine

    return F5Engine(EngineConfig(checkpoint=TINY_CHECKPOINT, device="cpu"))
