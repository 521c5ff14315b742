"""The policy file: a run's acting networks beside each checkpoint, small enough to commit, and played
by ``core.evaluate`` (table and video) exactly as the checkpoint is, in a folder that has no checkpoint."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from test_evaluate import SMALL, need_renderer, table
from test_run import run

from core import evaluate
from core.checkpoint import POLICY_FILENAME, acting_network, load_checkpoint, load_policy
from core.video import video_info


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    proc, run_dir = run(SMALL, tmp_path_factory.mktemp("policy"))
    assert proc.returncode == 0, proc.stderr
    return run_dir


def policy_only(run_dir: Path, dest: Path) -> Path:
    """What a user gets from the repository: config.json and policy.pt (no checkpoint, no rows needed)."""
    dest.mkdir()
    for name in ("config.json", POLICY_FILENAME):
        shutil.copy(run_dir / name, dest / name)
    return dest


def test_policy_file_holds_the_acting_networks_of_the_last_checkpoint(finished_run):
    checkpoint, policy = load_checkpoint(str(finished_run)), load_policy(str(finished_run))
    networks = checkpoint["learner"]["networks"]
    acting = {k for k in networks if acting_network(k)}
    assert acting == set(policy["networks"]) and {"pop_weight", "rl_weight", "phi.l1.weight"} <= acting
    assert not any(k.startswith(("critic", "pevfa", "phi_target")) or k.endswith("_target") for k in acting)
    for name in acting:
        assert torch.equal(policy["networks"][name], networks[name]), name
    assert policy["champion"] == checkpoint["champion"] and policy["run_name"] == checkpoint["run_name"]
    assert policy["counters"] == {k: checkpoint["counters"][k] for k in ("frames", "generation")}
    assert "buffer" not in str(sorted(policy)) and "optimizers" not in str(sorted(policy))
    # Hopper's φ and six heads are about 0.5 MB (float32); the checkpoint, with its buffer, critics and Adam states, far more.
    size = (finished_run / POLICY_FILENAME).stat().st_size
    assert size < 2**20 and 4 * size < (finished_run / "checkpoint.pt").stat().st_size


def test_evaluate_plays_the_policy_file_as_it_plays_the_checkpoint(finished_run, tmp_path, capsys):
    assert evaluate.main([str(finished_run), "-episodes", "2", "-seed", "5"]) == 0
    from_checkpoint = capsys.readouterr().out
    folder = policy_only(finished_run, tmp_path / "kept")
    assert evaluate.main([str(folder), "-episodes", "2", "-seed", "5"]) == 0
    from_policy = capsys.readouterr().out
    assert table(from_policy) == table(from_checkpoint) and len(table(from_policy)) == 6  # 5 members and the RL agent
    frames = load_policy(str(folder))["counters"]["frames"]
    assert f"| policy file at {frames:,} frames" in from_policy and f"| checkpoint at {frames:,} frames" in from_checkpoint


def test_evaluate_records_a_video_from_the_policy_file(finished_run, tmp_path, capsys):
    need_renderer()
    folder = policy_only(finished_run, tmp_path / "kept")
    assert evaluate.main([str(folder), "-episodes", "1", "-actor", "champion", "-video", str(tmp_path / "videos")]) == 0
    out = capsys.readouterr().out
    frames = load_policy(str(folder))["counters"]["frames"]
    mp4 = tmp_path / "videos" / f"{frames}_champion.mp4"
    length = int(table(out)["champion"][2])  # one episode: its length
    n, *_ = video_info(str(mp4))
    assert n == length + 1 and f"video: {mp4} ({n} frames)" in out  # the reset frame and one per step


@pytest.mark.parametrize("fault", ["altered", "other_run", "wrong_sizes"])
def test_a_bad_policy_file_is_one_line_exit_2(finished_run, tmp_path, capsys, fault):
    folder = policy_only(finished_run, tmp_path / "kept")
    path = folder / POLICY_FILENAME
    state = torch.load(path, weights_only=True)
    if fault == "altered":  # a weight changed on disk, the checksum kept
        state["networks"]["rl_bias"] = state["networks"]["rl_bias"] + 1.0
        expected = "is corrupt: its content does not match its SHA-256 checksum"
    elif fault == "other_run":
        from core.checkpoint import POLICY_FORMAT, content_digest

        state = {k: v for k, v in state.items() if k not in ("format", "sha256")}
        state["run_name"] = "someone-else"
        state = {"format": POLICY_FORMAT, "sha256": content_digest(state), **state}
        expected = "the policy file in"
    else:  # a head of the wrong width for this task
        from core.checkpoint import POLICY_FORMAT, content_digest

        state = {k: v for k, v in state.items() if k not in ("format", "sha256")}
        state["networks"]["rl_weight"] = torch.zeros(2, 3)
        state = {"format": POLICY_FORMAT, "sha256": content_digest(state), **state}
        expected = "the networks of its policy file do not match the sizes in config.json"
    torch.save(state, path)
    assert evaluate.main([str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m core.evaluate: error: RUN_DIR: ") and expected in err, err


def test_the_same_command_on_a_finished_run_restores_a_missing_policy_file(finished_run, tmp_path):
    copy = tmp_path / "logs" / finished_run.name
    shutil.copytree(finished_run, copy)
    (copy / POLICY_FILENAME).unlink()
    proc, _ = run(SMALL, tmp_path / "logs")
    assert proc.returncode == 0 and "has already finished" in proc.stdout and f"wrote {copy / POLICY_FILENAME}" in proc.stdout, proc.stdout
    restored, original = load_policy(str(copy)), load_policy(str(finished_run))
    assert {k: v for k, v in restored.items() if k != "networks"} == {k: v for k, v in original.items() if k != "networks"}
    assert restored["networks"].keys() == original["networks"].keys()
    assert all(torch.equal(restored["networks"][k], original["networks"][k]) for k in original["networks"])


def test_a_kept_run_without_its_checkpoint_is_never_started_afresh_over(finished_run, tmp_path):
    kept = tmp_path / "logs" / finished_run.name
    kept.mkdir(parents=True)
    for name in ("config.json", "progress.csv", POLICY_FILENAME):
        shutil.copy(finished_run / name, kept / name)
    before = {p.name: p.read_bytes() for p in kept.iterdir()}
    proc, _ = run(SMALL, tmp_path / "logs")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"holds a run's {POLICY_FILENAME} but no checkpoint.pt" in proc.stderr
    assert {p.name: p.read_bytes() for p in kept.iterdir() if p.name != "run.lock"} == before  # the lock: the run's own file
