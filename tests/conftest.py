"""Fixtures shared by the end-to-end tests."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_run import STARTED, TINY, run


@pytest.fixture(autouse=True)
def torch_threads_restored():
    """Every test leaves torch's thread count as it found it: in-process runs (``run_re2.main`` with
    ``-threads``, ``core.evaluate.main``) set it for the process and do not set it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def no_run_left_running():
    """A test that fails between starting a run and ending it (a held run waits for its signal) leaves no process."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


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
