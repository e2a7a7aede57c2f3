"""Shared test fixtures."""
import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:  # lets plain `pytest` (not only `python -m pytest`) import src
    sys.path.insert(0, REPO_ROOT)

from src.config import load_config  # noqa: E402


@pytest.fixture
def tiny_cfg():
    """cpu_small.yaml shrunk to seconds: 32x32 frames, a narrow network, 3 steps of batch 2."""
    return load_config(config_path=os.path.join(REPO_ROOT, "configs", "cpu_small.yaml"), image_size=32,
                       hidden_channels=[8], batch_size=2, steps_per_epoch=3, val_sequences=4, num_workers=1,
                       epochs=1, log_every=1)


@pytest.fixture
def pynative_mode():
    """Run a test in MindSpore's PYNATIVE mode and restore the previous mode afterwards."""
    import mindspore as ms

    previous = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    yield
    ms.set_context(mode=previous)
