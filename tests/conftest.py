"""Shared fixtures. The suite needs the real data: set MAMBA4NET_DATA (CI points it at ../shared/data)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _data_root() -> Path:
    root = os.environ.get("MAMBA4NET_DATA")
    if not root or not Path(root).is_dir():
        pytest.fail("MAMBA4NET_DATA must point at the shared data folder (e.g. MAMBA4NET_DATA=../shared/data); "
                    "the test suite does not skip without data.", pytrace=False)
    return Path(root)


@pytest.fixture(scope="session")
def data_root() -> Path:
    return _data_root()


@pytest.fixture(scope="session")
def fcc_test(data_root):
    from traces import load_abr_traces

    return load_abr_traces("fcc-test")


@pytest.fixture(scope="session")
def video1(data_root):
    from traces import load_abr_video

    return load_abr_video("video1")
