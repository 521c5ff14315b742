"""The run's lifecycle (docs/lifecycle.md): one directory per run identity, start-or-resume with the same
command, a fast exact stop in the middle of a generation, time-based checkpoints, and
``python -m core.lifecycle status LOGDIR``."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_run import ROOT, TINY, held, rows, start, without_timing

from core.checkpoint import load_checkpoint
from core.run_dir import RunLock, identity, run_name
from core.run_status import status_lines
from parameters import parse_args

SEED1 = [*TINY, "-theta", "0.5", "-seed", "1"]


def name(argv: list[str], logdir: Path) -> str:
    args, _ = parse_args([*argv, "-logdir", str(logdir)])
    return run_name(identity(args))


def again(argv: list[str], logdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run_re2.py", *argv, "-logdir", str(logdir)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the run did not get there in time")


def run_dir_of(logdir: Path) -> Path | None:
    found = list(logdir.glob("Hopper-v4__*/progress.csv"))
    return found[0].parent if found else None


# ---------------------------------------------------------------------- identity → directory
def test_run_directory_names(tmp_path):
    base = "HalfCheetah-v4__ERL-Re2__seed1"
    assert name([], tmp_path) == base
    assert name(["-EA", "-RL"], tmp_path) == base
    assert name(["-theta", "0.3", "-K", "1"], tmp_path) == base  # HalfCheetah's task defaults, given explicitly
    # Budget, threads, logging, device and checkpoint cadence are not what a run is.
    assert name(["-num_frames", "2e6", "-threads", "1", "-wandb_mode", "disabled", "-wandb_project", "p", "-disable_cuda",
                 "-checkpoint_every", "10", "-checkpoint_minutes", "1"], tmp_path / "elsewhere") == base
    assert name(["-env", "Hopper-v4", "-seed", "3", "-RL"], tmp_path) == "Hopper-v4__RL-only__seed3"
    assert name(["-EA"], tmp_path) == "HalfCheetah-v4__EA-only__seed1"
    assert name(["-theta", "0.5", "-use_all"], tmp_path) == "HalfCheetah-v4__ERL-Re2__theta=0.5,use_all__seed1"
    assert name(["-rl_algo", "ddpg"], tmp_path) == "HalfCheetah-v4__ERL-Re2__rl_algo=ddpg__seed1"
    assert name(["-tag", "rerun-2"], tmp_path) == "HalfCheetah-v4__ERL-Re2__rerun-2__seed1"
    many = ["-theta", "0.5", "-frac", "0.4", "-K", "2", "-gamma", "0.98", "-tau", "0.01", "-batch_size", "64", "-pop_size", "7"]
    hashed = name(many, tmp_path)
    assert re.fullmatch(r"HalfCheetah-v4__ERL-Re2__cfg-[0-9a-f]{10}__seed1", hashed)
    assert name(many[8:] + many[:8], tmp_path) == hashed  # order of the flags does not matter
    assert name([*many[:-1], "8"], tmp_path) != hashed


def test_same_command_again_skips_a_finished_run(seed1_run, tmp_path):
    run_dir = tmp_path / seed1_run.name  # a copy: the shared run's folder is read, never run in
    shutil.copytree(seed1_run, run_dir, ignore=shutil.ignore_patterns("run.lock"))
    before = (run_dir / "progress.csv").read_bytes()
    proc = again(SEED1, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"{run_dir} has already finished (" in proc.stdout and "frames): nothing to do" in proc.stdout
    assert (run_dir / "progress.csv").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [run_dir.name]


# ---------------------------------------------------------------------- fast exact stop
def test_sigterm_inside_learner_iterations_stops_within_10s_and_the_same_command_resumes_exactly(seed1_run, tmp_path):
    proc = start(SEED1, tmp_path, gate="iterations")  # held halfway through its first generation's learner iterations
    where = held(proc, tmp_path)
    run_dir = run_dir_of(tmp_path)
    generation, done, total = where["generation"], where["done"], where["iterations"]
    assert 0 < done < total
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - t0
    print(f"\nSIGTERM after {done} of {total} learner iterations: exit {proc.returncode} after {took:.2f} s")
    assert proc.returncode == 143, err
    assert took < 10  # the guarantee of docs/lifecycle.md, for a run this size
    # It stopped at the check it was held in, between two learner iterations: no further iteration ran.
    assert re.search(rf"SIGTERM received: checkpoint written to .* \(generation {generation} in progress: "
                     rf"{total - done} of {total} learner iterations left\)", out), out
    pending = load_checkpoint(str(run_dir))["pending"]
    assert (pending["iterations_done"], pending["iterations"]) == (done, total)
    assert len(rows(run_dir)) == generation - 1 < len(rows(seed1_run))
    resumed = again(SEED1, tmp_path)  # start-or-resume: the same command, no -resume
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resuming {run_dir}" in resumed.stdout
    assert without_timing(rows(run_dir)) == without_timing(rows(seed1_run))


def test_checkpoint_minutes_bounds_what_a_sigkill_loses(seed1_run, tmp_path):
    """Checkpoints every 1.2 s (mid-generation too) and none by frames: after SIGKILL the run
    resumes from the last timed checkpoint and ends with the uninterrupted rows."""
    reference = rows(seed1_run)  # where to kill, from the uninterrupted run's rows: they depend on the CPU
    proc = start([*SEED1, "-checkpoint_every", "1000000", "-checkpoint_minutes", "0.02"], tmp_path)
    run_dir = wait_for(lambda: run_dir_of(tmp_path), proc)
    wait_for(lambda: (run_dir / "checkpoint.pt").exists() and len(rows(run_dir)) >= len(reference) // 2, proc)

    def stopped_after_a_mid_generation_checkpoint() -> bool:
        """Freeze the run (SIGSTOP); keep it frozen if its checkpoint on disk was written inside a generation."""
        proc.send_signal(signal.SIGSTOP)
        if load_checkpoint(str(run_dir))["pending"] is not None:
            return True
        proc.send_signal(signal.SIGCONT)
        return False

    wait_for(stopped_after_a_mid_generation_checkpoint, proc)
    proc.kill()
    proc.communicate()
    state = load_checkpoint(str(run_dir))
    assert state["pending"] is not None  # the run resumes from inside a generation
    assert 0 < state["counters"]["frames"] < int(reference[-1]["frames"])
    resumed = again([*SEED1, "-checkpoint_every", "1000000", "-checkpoint_minutes", "0.02"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert without_timing(rows(run_dir)) == without_timing(rows(seed1_run))


def test_a_run_killed_before_its_first_checkpoint_starts_afresh(seed1_run, tmp_path):
    argv = [*SEED1, "-checkpoint_every", "1000000", "-checkpoint_minutes", "0"]
    proc = start(argv, tmp_path, gate="start:4")  # held after three rows
    held(proc, tmp_path)
    run_dir = run_dir_of(tmp_path)
    proc.kill()
    proc.communicate()
    assert not (run_dir / "checkpoint.pt").exists()
    (line,) = status_lines(str(tmp_path))
    assert line.split()[-2] == "failed"
    old_id = json.loads((run_dir / "config.json").read_text())["wandb_run_id"]
    resumed = again(argv, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{run_dir} has no checkpoint (its first attempt stopped before writing one): starting it afresh" in resumed.stdout
    assert without_timing(rows(run_dir)) == without_timing(rows(seed1_run))
    assert json.loads((run_dir / "config.json").read_text())["wandb_run_id"] != old_id


# ---------------------------------------------------------------------- status
def _fake_run(logdir: Path, run: str, state: str | None, frames: int, budget: int, checkpoint: bool) -> Path:
    run_dir = logdir / run
    run_dir.mkdir()
    env, variant, seed = run.split("__")[0], run.split("__")[1].replace("-", " "), int(run.rsplit("seed", 1)[1])
    config = {"run_name": run, "env": env, "variant": variant.replace("ERL Re2", "ERL-Re2"), "seed": seed,
              "settings": {"num_frames": budget}}
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "progress.csv").write_text(f"frames,generation,best_reward,fps\n{frames},3,812.5,77.1\n")
    if state:
        (run_dir / "status.json").write_text(json.dumps({"state": state}))
    if checkpoint:
        (run_dir / "checkpoint.pt").write_bytes(b"x")
    return run_dir


def test_status_prints_one_line_per_run(tmp_path):
    logdir = tmp_path / "logs"
    logdir.mkdir()
    (logdir / "jobs").mkdir()  # launcher logs: not a run
    _fake_run(logdir, "Ant-v4__ERL-Re2__seed1", "finished", 1000, 1000, True)
    _fake_run(logdir, "Ant-v4__ERL-Re2__seed2", "stopped", 400, 1000, True)
    held = _fake_run(logdir, "Ant-v4__ERL-Re2__seed3", "running", 300, 1000, True)
    _fake_run(logdir, "Ant-v4__RL-only__seed1", "failed", 300, 1000, True)  # e.g. a non-finite loss
    _fake_run(logdir, "Hopper-v4__EA-only__seed1", "running", 200, 1000, False)  # killed before its first checkpoint
    _fake_run(logdir, "Hopper-v4__ERL-Re2__seed1", "running", 500, 1000, True)  # killed after a checkpoint
    _fake_run(logdir, "Hopper-v4__ERL-Re2__seed2", "finished", 1000, 3000, True)  # finished, then its budget extended
    lock = RunLock(str(held))  # a live process (this one) holds seed3
    try:
        proc = subprocess.run([sys.executable, "-m", "core.lifecycle", "status", str(logdir)], cwd=ROOT, capture_output=True,
                              text=True, timeout=60, check=False)
    finally:
        import os

        os.close(lock.fd)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    print("\n" + proc.stdout)
    states = {line.split()[-1]: line.split()[-2] for line in lines}
    assert states == {"Ant-v4__ERL-Re2__seed1": "finished", "Ant-v4__ERL-Re2__seed2": "stopped", "Ant-v4__ERL-Re2__seed3": "running",
                      "Ant-v4__RL-only__seed1": "failed", "Hopper-v4__EA-only__seed1": "failed",
                      "Hopper-v4__ERL-Re2__seed1": "stopped", "Hopper-v4__ERL-Re2__seed2": "stopped"}
    first = lines[0].split()
    assert first[:4] == ["Ant-v4", "ERL-Re2", "seed", "1"] and first[4:6] == ["frames", "1,000/1,000"]
    assert first[6:10] == ["best_reward", "812.5", "fps", "77.1"]
    missing = subprocess.run([sys.executable, "-m", "core.lifecycle", "status", str(tmp_path / "nope")], cwd=ROOT,
                             capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1


def test_a_folder_of_other_settings_and_a_new_wandb_project_are_refused(seed1_run, tmp_path, capsys):
    import shutil

    import run_re2

    logdir = tmp_path / "logs"
    tagged = name([*SEED1, "-tag", "x"], logdir)
    shutil.copytree(seed1_run, logdir / tagged, ignore=shutil.ignore_patterns("run.lock"))  # a folder holding the untagged run
    assert run_re2.main([*SEED1, "-tag", "x", "-logdir", str(logdir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a run with other settings than this command's" in err and "-tag" in err
    shutil.copytree(seed1_run, logdir / seed1_run.name, ignore=shutil.ignore_patterns("run.lock"))
    assert run_re2.main([*SEED1, "-wandb_project", "other", "-logdir", str(logdir)]) == 2
    err = capsys.readouterr().err
    assert err == "run_re2.py: error: -wandb_project cannot change when a run continues (this run logs to 'ERL-Re2')\n"
    assert run_re2.main([*SEED1, "-logdir", str(logdir)]) == 0  # the lock of the refused attempts was released
    assert "has already finished" in capsys.readouterr().out


def test_settings_of_a_run_older_than_a_flag_get_its_default(seed1_run):
    """config.json of a run started before -compile, -pevfa_rows, -phi_grad and -capture_video existed:
    its settings read back with the flags added since off, the learner variants it ran with (true rows
    unless -reference_pevfa_rows was given, the pre-step φ gradient, elites cloned from a snapshot, the best
    test that ran as the reported score, the critic on the batch's actions), every recorded value kept, and the
    learner builds. Today's runs record today's defaults (the reference's rows and gradient)."""
    from core.agent import make_learner_config
    from parameters import recorded_settings

    settings = json.loads((seed1_run / "config.json").read_text())["settings"]
    assert (settings["pevfa_rows"], settings["phi_grad"]) == ("reference", "reference")
    assert (settings["elite_clone"], settings["reported_score"], settings["critic_actions"]) == ("reference",) * 3
    newer = ("compile", "pevfa_rows", "phi_grad", "capture_video", "elite_clone", "reported_score", "critic_actions")
    old = {k: v for k, v in settings.items() if k not in newer}
    for flag, layout in ((None, "paper"), (False, "paper"), (True, "reference")):
        recorded = old if flag is None else {**old, "reference_pevfa_rows": flag}
        args = recorded_settings(recorded)
        assert (args.compile, args.capture_video, args.pevfa_rows, args.phi_grad) == (False, False, layout, "paper")
        assert (args.elite_clone, args.reported_score, args.critic_actions) == ("snapshot", "tests_run", "batch")
        assert not hasattr(args, "reference_pevfa_rows")
        assert all(getattr(args, k) == v for k, v in old.items())
        cfg = make_learner_config(args, 17, 6)
        assert (cfg.pevfa_rows, cfg.phi_grad, cfg.compile, cfg.K) == (layout, "paper", False, settings["K"])


def test_a_run_started_before_the_reference_defaults_continues_as_it_started(seed1_run, tmp_path, capsys):
    """The same command on a run whose config.json predates -pevfa_rows / -phi_grad (then: true rows, the
    pre-step gradient) continues that run with the behaviour it started with, and says so."""
    import shutil

    import run_re2
    from core.lifecycle import open_run

    logdir = tmp_path / "logs"
    run_dir = logdir / seed1_run.name
    shutil.copytree(seed1_run, run_dir, ignore=shutil.ignore_patterns("run.lock"))
    config = json.loads((run_dir / "config.json").read_text())
    config["settings"] = {k: v for k, v in config["settings"].items() if k not in ("pevfa_rows", "phi_grad")}
    config["settings"]["reference_pevfa_rows"] = False
    (run_dir / "config.json").write_text(json.dumps(config))
    run = open_run([*SEED1, "-logdir", str(logdir)])
    os.close(run.lock.fd)  # the kernel drops the flock with the descriptor
    assert (run.args.pevfa_rows, run.args.phi_grad) == ("paper", "paper")
    assert ("was started before today's defaults of -pevfa_rows, -phi_grad: it continues as it started "
            "(-pevfa_rows paper -phi_grad paper)") in capsys.readouterr().out
    assert run_re2.main([*SEED1, "-logdir", str(logdir)]) == 0
    assert "has already finished" in capsys.readouterr().out
