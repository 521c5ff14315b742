"""Fixtures shared by the end-to-end tests."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_run import TINY, run


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test (bit-identical comparisons within it), the count restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def seed1_run(tmp_path_factory) -> Path:
    """A tiny full ERL-Re² run with both fitness kinds (theta 0.5): the uninterrupted rows that
    interrupted, resumed, extended and faulted runs of the same command are compared with."""
    logdir = tmp_path_factory.mktemp("seed1")
    proc, run_dir = run([*TINY, "-theta", "0.5", "-seed", "1"], logdir)
    assert proc.returncode == 0, proc.stderr
    return run_dir
