"""Aggregate statistics as the field reports them (Agarwal et al., *Deep RL at the Edge of the
Statistical Precipice*, NeurIPS 2021), computed with their package ``rliable``: the interquartile
mean (IQM, the 25 % trimmed mean over runs × tasks) with 95 % stratified-bootstrap confidence
intervals (runs resampled within each task, percentile method).

Bootstraps are reproducible: rliable 1.2.0 ignores its ``random_state`` argument when resampling
(``StratifiedBootstrap.update_indices`` draws from numpy's global generator), so the global
generator is seeded with BOOTSTRAP_SEED for the call and its previous state put back afterwards.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from rliable import library as rly
from rliable import metrics
from scipy.stats import trim_mean

BOOTSTRAP_SEED = 0
REPS = 5000  # bootstrap replications for a final score
CURVE_REPS = 1000  # per sample-efficiency curve (every point resampled in each replication)
MIN_MEANINGFUL_N = 3  # below this many seeds a bootstrap interval says nothing about uncertainty


@contextmanager
def _seeded_global_numpy(seed: int) -> Iterator[None]:
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def iqm(scores: np.ndarray) -> float:
    """IQM of a ``[runs, tasks]`` score matrix (rliable's ``aggregate_iqm``)."""
    return float(metrics.aggregate_iqm(np.asarray(scores, dtype=float)))


def iqm_with_ci(scores: np.ndarray, reps: int | None = None) -> tuple[float, float, float]:
    """(IQM, lower, upper) of a ``[runs, tasks]`` matrix, 95 % stratified-bootstrap CI."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or not np.isfinite(scores).all():
        raise ValueError(f"need a finite [runs, tasks] matrix, got shape {scores.shape}")
    with _seeded_global_numpy(BOOTSTRAP_SEED):
        point, interval = rly.get_interval_estimates({"s": scores}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps or REPS)
    return float(point["s"][0]), float(interval["s"][0, 0]), float(interval["s"][1, 0])


def _iqm_per_point(scores: np.ndarray) -> np.ndarray:
    # rliable's aggregate_iqm (trim_mean over runs × tasks) for every point of the last axis at once.
    return trim_mean(scores.reshape(-1, scores.shape[-1]), proportiontocut=0.25, axis=0)


def iqm_curve(scores: np.ndarray, reps: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IQM and 95 % CI at every point of a ``[runs, tasks, points]`` array (a sample-efficiency curve)."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 3 or not np.isfinite(scores).all():
        raise ValueError(f"need a finite [runs, tasks, points] array, got shape {scores.shape}")
    with _seeded_global_numpy(BOOTSTRAP_SEED):
        point, interval = rly.get_interval_estimates({"s": scores}, _iqm_per_point, reps=reps or CURVE_REPS)
    return point["s"], interval["s"][0], interval["s"][1]


def meaningful(n: int) -> bool:
    return n >= MIN_MEANINGFUL_N
