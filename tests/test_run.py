"""End-to-end runs on a tiny budget (subprocesses, as a user runs them) and the command line's
refusal of bad input."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import run_re2
from core.checkpoint import load_checkpoint
from core.logger import COLUMNS
from core.rollout import EnvPool, run_episodes
from core.run_dir import LOCK_FILE

ROOT = Path(__file__).resolve().parents[1]
TINY = ["-env", "Hopper-v4", "-num_frames", "1500", "-init_steps", "500", "-test_episodes", "2",
        "-max_episode_steps", "100", "-batch_size", "32", "-wandb_mode", "disabled", "-threads", "1"]


GATE = ROOT / "tests" / "run_gate"  # sitecustomize.py there holds a run at a point a test names (ERL_RE2_TEST_GATE)


def gate_env(gate: str) -> dict[str, str]:
    """The environment under which run_re2.py processes stop at ``gate`` ("start:G" or "iterations", see
    tests/run_gate/sitecustomize.py) until they are signalled or killed."""
    path = os.pathsep.join(p for p in (str(GATE), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "ERL_RE2_TEST_GATE": gate}


STARTED: list[subprocess.Popen] = []  # runs start() began; tests/conftest.py kills any left running after a test


def start(args: list[str], logdir: Path, gate: str | None = None) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "run_re2.py", *args, "-logdir", str(logdir)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=gate_env(gate) if gate else None)
    STARTED.append(proc)
    return proc


def held(proc: subprocess.Popen, logdir: Path, seed: int = 1, timeout: float = 600) -> dict:
    """Where a run started with a gate is held, once it is held there: it stays there until it is signalled or
    killed, so what the test does next cannot come too late. The limit is only for a run that never gets there."""
    path = logdir / f"gate_seed{seed}.json"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run exited ({proc.returncode}) before reaching its gate\n{out}\n{err}")
        assert time.monotonic() < deadline, f"the run did not reach its gate in {timeout} s"
        time.sleep(0.05)
    return json.loads(path.read_text())


def run(args: list[str], logdir: Path, timeout: float = 300) -> tuple[subprocess.CompletedProcess, Path | None]:
    proc = subprocess.run([sys.executable, "run_re2.py", *args, "-logdir", str(logdir)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, check=False)
    dirs = sorted(p for p in logdir.glob("*") if p.is_dir()) if logdir.exists() else []
    return proc, (dirs[-1] if dirs else None)


def rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "progress.csv", newline="") as f:
        return list(csv.DictReader(f))


def without_timing(table: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("time_s", "fps")} for r in table]


def test_full_run_writes_progress_and_config(seed1_run):
    table = rows(seed1_run)
    assert list(table[0]) == list(COLUMNS)
    frames = [int(r["frames"]) for r in table]
    assert frames == sorted(frames) and frames[-1] >= 1500
    assert [int(r["generation"]) for r in table] == list(range(1, len(table) + 1))
    # Before init: no fitness, no champion (empty cells, never a fake zero); after: both.
    assert table[0]["fitness_kind"] == "none" and table[0]["champion_score"] == "" and table[0]["fitness_max"] == ""
    evo = [r for r in table if r["fitness_kind"] != "none"]
    assert evo and all(r["champion_score"] and r["fitness_max"] for r in evo)
    assert {r["fitness_kind"] for r in evo} <= {"mc", "h_step"}
    for r in table:
        scores = [float(r[k]) for k in ("champion_score", "rl_score") if r[k]]
        assert float(r["best_reward"]) == max(scores)
    trained = [r for r in table if r["critic_loss"]]
    assert trained and all(r["pevfa_loss"] and r["actor_loss"] for r in trained)
    assert any(r["ea_loss"] for r in trained) and any(r["elite_rate"] for r in trained)

    config = json.loads((seed1_run / "config.json").read_text())
    assert config["env"] == "Hopper-v4" and config["task"] == "Hopper" and config["variant"] == "ERL-Re2"
    s, src = config["settings"], config["sources"]
    # Hopper's paper settings (frac 0.2, H 50, K 3) as task defaults; theta from the flag.
    assert (s["frac"], s["time_steps"], s["K"], s["gamma"], s["sync_period"]) == (0.2, 50, 3, 0.99, 1)
    assert src["frac"] == "task default" and src["theta"] == "flag" and s["theta"] == 0.5
    assert src["tau"] == "built-in" and s["EA"] is True and s["RL"] is True
    assert config["versions"]["torch"].startswith("2.13.0") and "wandb_run_id" in config
    assert (seed1_run / "checkpoint.pt").is_file()


def test_ea_only_and_rl_only(tmp_path):
    proc, run_dir = run([*TINY, "-EA", "-num_frames", "600"], tmp_path / "ea")
    assert proc.returncode == 0, proc.stderr
    assert "EA-only" in proc.stdout
    table = rows(run_dir)
    assert all(r["fitness_kind"] == "mc" and r["champion_score"] and r["rl_score"] == "" for r in table)
    assert all(r["critic_loss"] == "" and r["pevfa_loss"] == "" for r in table)  # nothing trains
    assert json.loads((run_dir / "config.json").read_text())["variant"] == "EA only"
    # The authors' reported score: the RL test that did not run counts as 0.
    assert all(float(r["best_reward"]) == max(float(r["champion_score"]), 0.0) for r in table)

    proc, run_dir = run([*TINY, "-RL", "-num_frames", "1000"], tmp_path / "rl")
    assert proc.returncode == 0, proc.stderr
    table = rows(run_dir)
    assert all(r["fitness_kind"] == "none" and r["champion_score"] == "" and r["rl_score"] for r in table)
    assert any(r["critic_loss"] for r in table) and all(r["pevfa_loss"] == "" and r["ea_loss"] == "" for r in table)
    assert json.loads((run_dir / "config.json").read_text())["variant"] == "RL only"
    assert all(float(r["best_reward"]) == max(float(r["rl_score"]), 0.0) for r in table)


def test_humanoid_actions_stay_in_bounds():
    pool = EnvPool("Humanoid-v4", 2, max_episode_steps=20)
    assert np.allclose(pool.high, 0.4) and np.allclose(pool.low, -0.4)
    sent = []
    for env in pool.envs:
        step = env.step
        env.step = lambda a, step=step: (sent.append(np.array(a)), step(a))[1]
    extreme = np.array([[1.0] * 8 + [-1.0] * 9])
    run_episodes(pool, lambda obs, idx: np.repeat(extreme, len(idx), 0), [1, 2])
    sent = np.stack(sent)
    assert np.abs(sent).max() == pytest.approx(0.4) and np.all(np.abs(sent) <= 0.4 + 1e-7)
    assert np.allclose(sent[0], 0.4 * extreme[0])  # policy space [-1, 1] maps onto the bounds


def test_humanoid_run_sends_actions_within_its_bounds_and_uses_them(tmp_path, monkeypatch):
    """A whole Humanoid run (in this process, every environment's step spied on): each action that reaches
    an environment (warm-up, exploration, fitness and test episodes) lies within Humanoid's ±0.4, not ±1, and
    the range is used, not a fraction of it: in every joint some action goes past +0.3 and some past -0.3. The
    warm-up alone makes that sure whatever the trajectory: a joint's 100 or more uniform draws all stay short
    of one side with probability (7/8)^100 < 2e-6."""
    import core.rollout

    sent: list[np.ndarray] = []
    make_env = core.rollout.make_env

    def spied(env_id, max_episode_steps=None, **kwargs):
        env = make_env(env_id, max_episode_steps, **kwargs)
        step = env.step
        env.step = lambda action: (sent.append(np.array(action, dtype=np.float64)), step(action))[1]
        return env

    monkeypatch.setattr(core.rollout, "make_env", spied)
    assert run_re2.main(["-env", "Humanoid-v4", "-num_frames", "300", "-init_steps", "100", "-test_episodes", "1",
                         "-max_episode_steps", "50", "-batch_size", "16", "-wandb_mode", "disabled", "-threads", "1",
                         "-logdir", str(tmp_path)]) == 0
    (run_dir,) = tmp_path.iterdir()
    frames = int(rows(run_dir)[-1]["frames"])
    actions = np.stack(sent)
    bound = float(np.float32(0.4))  # the task's bound as float32 reads it
    assert frames >= 300 and actions.shape[0] >= frames and actions.shape[1] == 17  # each frame is an env.step
    assert np.abs(actions).max() <= bound + 1e-9, np.abs(actions).max()
    assert (actions.max(axis=0) > 0.3).all() and (actions.min(axis=0) < -0.3).all(), (actions.min(0), actions.max(0))


@pytest.mark.parametrize(("argv", "needle"), [
    (["-env", "HalfCheetah-v9"], "-env: unknown task 'HalfCheetah-v9'; did you mean HalfCheetah-v"),
    (["-env", "Hoppr-v4"], "did you mean Hopper-v4"),
    (["-pop_size", "1"], "-pop_size must be an integer >= 2"),
    (["-K", "0"], "-K must be in [1, pop_size + 1] = [1, 6]"),
    (["-K", "7"], "-K must be in [1, pop_size + 1]"),
    (["-theta", "1.5"], "-theta must be in [0, 1]"),
    (["-frac", "-0.1"], "-frac must be in [0, 1]"),
    (["-prob_reset_and_sup", "1.2"], "-prob_reset_and_sup must be in [0, 1]"),
    (["-prob_reset_and_sup", "0.6"], "-prob_reset_and_sup must be <= 0.5"),
    (["-OFF_TYPE", "3"], "-OFF_TYPE must be 1 or 2"),
    (["-num_frames", "0"], "-num_frames must be a positive integer"),
    (["-time_steps", "-5"], "-time_steps must be a positive integer"),
    (["-test_episodes", "0"], "-test_episodes must be a positive integer"),
    (["-batch_size", "0"], "-batch_size must be a positive integer"),
    (["-num_evals", "0"], "-num_evals must be a positive integer"),
    (["-logdir", "/proc/forbidden/logs"], "-logdir: cannot create or write to"),
    (["-rl_algo", "sac"], "argument -rl_algo: invalid choice: 'sac'"),
    (["-wandb_mode", "cloud"], "argument -wandb_mode: invalid choice"),
    (["-pop_size", "five"], "argument -pop_size: invalid int value"),
    (["-buffer_size", "10"], "-buffer_size must be >= 5000 = max(batch_size, min(5000, init_steps)) (got 10)"),
    (["-buffer_size", "100", "-batch_size", "256", "-init_steps", "50"], "-buffer_size must be >= 256"),
    (["-EA_actor_alpha", "nan"], "argument -EA_actor_alpha: must be a finite number (got nan)"),
    (["-tau", "inf"], "argument -tau: must be a finite number (got inf)"),
    (["-theta", "x"], "argument -theta: invalid float value: 'x'"),
    (["-checkpoint_minutes", "-1"], "-checkpoint_minutes must be >= 0"),
    (["-tag", "a/b"], "argument -tag: must be 1-40 characters"),
    (["-phi_grad", "torch"], "argument -phi_grad: invalid choice: 'torch' (choose from 'reference', 'paper')"),
    (["-pevfa_rows", "rows"], "argument -pevfa_rows: invalid choice: 'rows' (choose from 'reference', 'paper')"),
    (["-elite_clone", "copy"], "argument -elite_clone: invalid choice: 'copy' (choose from 'reference', 'snapshot')"),
    (["-reported_score", "best"], "argument -reported_score: invalid choice: 'best' (choose from 'reference', 'tests_run')"),
    (["-reference_pevfa_rows"], ("-reference_pevfa_rows no longer exists: the reference's rows are the default now; "
                                 "-pevfa_rows {reference,paper} chooses the layout")),
])
def test_bad_input_exits_2_with_one_line(argv, needle, capsys, tmp_path):
    if "-logdir" not in argv:
        argv = [*argv, "-logdir", str(tmp_path / "logs")]
    with pytest.raises(SystemExit) as exc:
        sys.exit(run_re2.main(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").iterdir())  # no run started


def test_bad_input_from_the_shell(tmp_path):
    proc, _ = run(["-pop_size", "1"], tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == "run_re2.py: error: -pop_size must be an integer >= 2 (got 1)"


def test_same_seed_same_rows_and_other_seed_differs(seed1_run, tmp_path):
    proc, again = run([*TINY, "-theta", "0.5", "-seed", "1"], tmp_path / "again")
    assert proc.returncode == 0, proc.stderr
    assert without_timing(rows(again)) == without_timing(rows(seed1_run))
    proc, other = run([*TINY, "-theta", "0.5", "-seed", "2", "-num_frames", "600"], tmp_path / "other")
    assert proc.returncode == 0, proc.stderr
    n = min(len(rows(other)), len(rows(seed1_run)))
    assert without_timing(rows(other))[:n] != without_timing(rows(seed1_run))[:n]


def test_sigterm_then_resume_gives_the_uninterrupted_rows(seed1_run, tmp_path):
    # Interrupt once learning and evolution are both under way: the run is held before the generation after the
    # first row with both (where that row falls, from the uninterrupted run's rows: it depends on the CPU).
    reference = rows(seed1_run)
    both = next(int(r["generation"]) for r in reference if r["fitness_kind"] != "none" and r["critic_loss"])
    assert both < len(reference), "the reference run ends with its first generation of learning and evolution"
    proc = start([*TINY, "-theta", "0.5", "-seed", "1"], tmp_path, gate=f"start:{both + 1}")
    held(proc, tmp_path)
    run_dir = next(tmp_path.glob("Hopper-v4__*"))
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "SIGTERM received: checkpoint written" in out and f"run_re2.py -resume {run_dir}" in out
    assert len(rows(run_dir)) == both < len(reference)
    resumed = subprocess.run([sys.executable, "run_re2.py", "-resume", str(run_dir)], cwd=ROOT,
                             capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert without_timing(rows(run_dir)) == without_timing(rows(seed1_run))


def test_crash_after_checkpoint_resumes_without_duplicate_rows(seed1_run, tmp_path):
    """SIGKILL (no chance to save): the rows written after the last periodic checkpoint are
    dropped on resume and recomputed identically."""
    # The checkpoint falls at the end of the reference run's fourth-to-last generation and the kill two
    # generations before its end (the run held there): both from that run's rows, since generation sizes
    # depend on the CPU.
    reference = rows(seed1_run)
    every = reference[-4]["frames"]
    proc = start([*TINY, "-theta", "0.5", "-seed", "1", "-checkpoint_every", every], tmp_path,
                 gate=f"start:{len(reference) - 1}")
    held(proc, tmp_path)
    run_dir = next(tmp_path.glob("Hopper-v4__*"))
    proc.kill()
    proc.communicate()
    assert load_checkpoint(str(run_dir))["counters"]["frames"] == int(every)
    # Rows were logged after the checkpoint: the resume has rows to drop.
    assert len(rows(run_dir)) == len(reference) - 2 > load_checkpoint(str(run_dir))["logged_generation"]
    resumed = subprocess.run([sys.executable, "run_re2.py", "-resume", str(run_dir)], cwd=ROOT,
                             capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert without_timing(rows(run_dir)) == without_timing(rows(seed1_run))


def _snapshot(run_dir: Path) -> dict[str, tuple[int, int]]:
    """Every file's size and time, but the lock file (created to read the checkpoint under the lock)."""
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in run_dir.iterdir() if p.name != LOCK_FILE}


@pytest.mark.parametrize("case", ["missing", "truncated", "foreign", "not_a_run"])
def test_bad_checkpoint_is_refused_and_touches_nothing(case, seed1_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    if case != "not_a_run":
        (run_dir / "config.json").write_text((seed1_run / "config.json").read_text())
        (run_dir / "progress.csv").write_text((seed1_run / "progress.csv").read_text())
    if case == "truncated":
        data = (seed1_run / "checkpoint.pt").read_bytes()
        (run_dir / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    elif case == "foreign":
        import torch

        torch.save({"model": torch.zeros(3)}, run_dir / "checkpoint.pt")
    before = _snapshot(run_dir)
    assert run_re2.main(["-resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    expected = {"missing": f"no checkpoint at {run_dir / 'checkpoint.pt'}",
                "truncated": f"{run_dir / 'checkpoint.pt'} is not a readable checkpoint (",
                "foreign": f"{run_dir / 'checkpoint.pt'} is not an ERL-Re2 checkpoint of format",
                "not_a_run": f"{run_dir} is not an ERL-Re2 run directory (no readable config.json)"}[case]
    assert err.count("\n") == 1 and err.startswith(f"run_re2.py: error: -resume: {expected}"), err
    assert _snapshot(run_dir) == before


def test_non_finite_loss_stops_with_a_message(tmp_path, capsys, monkeypatch):
    from core.ddpg import ERLRe2Learner

    real = ERLRe2Learner.pop_losses

    def poisoned(self):
        out = real(self)
        if out["critic_loss"] is not None:
            out["critic_loss"] = float("nan")
        return out

    monkeypatch.setattr(ERLRe2Learner, "pop_losses", poisoned)
    code = run_re2.main([*TINY, "-num_frames", "1000", "-checkpoint_every", "100", "-logdir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "non-finite critic_loss" in err and "at generation" in err and "last good checkpoint:" in err
    assert "checkpoint.pt" in err


def test_wandb_offline_needs_no_login(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB")}
    env["WANDB_API_KEY"] = ""
    proc = subprocess.run([sys.executable, "run_re2.py", *TINY[:-4], "-num_frames", "60", "-init_steps", "50",
                           "-logdir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=180, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    run_dir = next(tmp_path.glob("Hopper-v4__ERL-Re2__*__seed1"))
    assert list((run_dir / "wandb").glob("offline-run-*"))


# ---------------------------------------------------------------------------- the reference's generation loop
# The loop itself (warm-up evolution, the sync in the generation that crosses init_steps, both fitness
# kinds, ...) is compared with a plain implementation generation by generation in tests/test_loop_twin.py.
def test_swimmer_syncs_every_10_generations_unless_told_otherwise(tmp_path):
    from parameters import parse_args

    args, sources = parse_args(["-env", "Swimmer-v4", "-logdir", str(tmp_path)])
    assert args.sync_period == 10 and sources["sync_period"] == "task default"
    args, sources = parse_args(["-env", "Swimmer-v4", "-sync_period", "1", "-logdir", str(tmp_path)])
    assert args.sync_period == 1 and sources["sync_period"] == "flag"
    for env in ("HalfCheetah-v4", "Hopper-v5", "Walker2d-v4", "Ant-v4", "Humanoid-v4"):
        assert parse_args(["-env", env, "-logdir", str(tmp_path)])[0].sync_period == 1
    assert parse_args(["-env", "Pendulum-v1", "-logdir", str(tmp_path)])[0].sync_period == 10


def test_task_outside_the_paper_gets_the_reference_command_line_defaults(tmp_path):
    """The reference has no per-task table in code: on a task its scripts do not cover it runs with its
    argparse defaults (theta 0.5, frac 0.1, time_steps 1, K 5, gamma 0.99); K at most pop_size + 1."""
    from parameters import parse_args

    args, sources = parse_args(["-env", "Pendulum-v1", "-logdir", str(tmp_path)])
    got = {k: getattr(args, k) for k in ("theta", "frac", "time_steps", "K", "gamma")}
    assert got == {"theta": 0.5, "frac": 0.1, "time_steps": 1, "K": 5, "gamma": 0.99}
    assert sources["frac"] == "built-in"
    assert parse_args(["-env", "Pendulum-v1", "-pop_size", "3", "-logdir", str(tmp_path)])[0].K == 4


@pytest.mark.parametrize("champion,rl,reference,tests_run", [
    (None, -12.5, 0.0, -12.5), (-3.0, None, 0.0, -3.0), (None, 7.0, 7.0, 7.0),
    (-3.0, -12.5, -3.0, -3.0), (4.0, -1.0, 4.0, 4.0), (None, None, 0.0, None),
])
def test_reported_score(champion, rl, reference, tests_run):
    """best_reward: the authors' max(champion, RL) with 0 for a test that did not run, or the best test that ran."""
    from core.agent import reported_score

    assert reported_score(champion, rl, "reference") == reference
    assert reported_score(champion, rl, "tests_run") == tests_run
    with pytest.raises(ValueError, match="reported_score"):
        reported_score(1.0, 2.0, "best")
