"""results/run_table.sh, the six-task campaign at 1M frames: the order in which a machine starts its runs,
runs whose committed rows are finished never run again, and --copy never shortens a committed record and
takes a run's policy.pt only once the run is finished."""
import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "results" / "run_table.sh"


def table(repo: Path, out: Path, *args: str, python: str = "python") -> subprocess.CompletedProcess:
    env = {**os.environ, "REPO": str(repo), "OUT": str(out), "SRC": str(out / "no-src"), "FRAMES": "100000",
           "TASKS": "HalfCheetah-v4 Hopper-v4 Ant-v4", "SEEDS": "1 2", "PYTHON": python}
    done = subprocess.run(["bash", str(SCRIPT), *args], check=False, env=env, capture_output=True, text=True, timeout=60)
    return done


def write_rows(run_dir: Path, last: int, step: int = 10_000) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "progress.csv").write_text("frames,best_reward\n" + "".join(f"{f},{f / 100}\n" for f in range(step, last + 1, step)))
    (run_dir / "config.json").write_text(f'{{"last": {last}}}\n')


def last_frames(path: Path) -> int:
    return int(path.read_text().splitlines()[-1].split(",")[0])


def test_checkpointed_runs_resume_first_then_those_furthest_behind_in_task_order(tmp_path):
    repo, out = tmp_path / "repo", tmp_path / "out"
    record = repo / "results/1M/table"
    for (task, seed), frames in {("HalfCheetah-v4", 1): 50_000, ("Hopper-v4", 2): 20_000, ("Ant-v4", 1): 100_000}.items():
        write_rows(record / f"{task}__ERL-Re2__seed{seed}", frames)
    live = out / "Hopper-v4__ERL-Re2__seed1"
    write_rows(live, 30_000)
    (live / "checkpoint.pt").write_bytes(b"x")
    done = table(repo, out, "--queue")
    assert done.returncode == 0, done.stderr
    assert [tuple(line.split()) for line in done.stdout.splitlines()] == [
        ("Hopper-v4", "1"),  # has a checkpoint here
        ("HalfCheetah-v4", "2"), ("Ant-v4", "2"),  # nothing committed, in task order
        ("Hopper-v4", "2"), ("HalfCheetah-v4", "1"), ("Ant-v4", "1")]  # 20k, 50k, 100k (finished: skipped when reached)


def test_a_run_whose_committed_rows_are_finished_is_not_run_again(tmp_path):
    repo, out, calls = tmp_path / "repo", tmp_path / "out", tmp_path / "calls.txt"
    fake = tmp_path / "python"  # stands in for run_re2.py: notes each run it is asked for
    fake.write_text(f'#!/usr/bin/env bash\necho "$3 $5 $7 $9" >> {calls}\n')
    fake.chmod(0o755)
    record = repo / "results/1M/table"
    write_rows(record / "Ant-v4__ERL-Re2__seed2", 100_000)  # finished on an earlier machine
    write_rows(record / "Hopper-v4__ERL-Re2__seed1", 90_000)  # not finished: runs (afresh here: no checkpoint)
    done = table(repo, out, python=str(fake))
    assert done.returncode == 0, done.stderr
    ran = sorted(tuple(line.split()) for line in calls.read_text().splitlines())
    assert ran == sorted((t, s, "100000", str(out)) for t in ("HalfCheetah-v4", "Hopper-v4", "Ant-v4") for s in "12"
                         if (t, s) != ("Ant-v4", "2"))
    assert "skip Ant-v4 seed 2: its committed rows reach 100000 frames" in done.stdout


def test_copy_keeps_a_record_that_reaches_further_and_takes_the_policy_of_finished_runs_only(tmp_path):
    repo, out = tmp_path / "repo", tmp_path / "out"
    record = repo / "results/1M/table"
    runs = {"HalfCheetah-v4__ERL-Re2__seed1": 100_000, "Hopper-v4__ERL-Re2__seed1": 40_000, "Ant-v4__ERL-Re2__seed2": 30_000,
            "Ant-v4__ERL-Re2__seed1": 100_000}  # Ant seed 1: its last row logged, its final checkpoint still being written
    for name, frames in runs.items():
        write_rows(out / name, frames)
        state = "finished" if name.startswith("HalfCheetah") else "running"
        (out / name / "status.json").write_text(f'{{\n  "exit_code": 0,\n  "state": "{state}"\n}}')
        (out / name / "policy.pt").write_bytes(f"policy of {name}".encode())
        (out / "jobs").mkdir(parents=True, exist_ok=True)
        (out / "jobs" / f"{name.split('__')[0]}__seed{name[-1]}.log").write_text(f"log of {name}\n")
    write_rows(record / "Ant-v4__ERL-Re2__seed2", 60_000)  # from an earlier machine, ahead of this one's run
    before = (record / "Ant-v4__ERL-Re2__seed2/progress.csv").read_bytes()

    done = table(repo, out, "--copy")
    assert done.returncode == 0, done.stderr
    assert "kept results/1M/table/Ant-v4__ERL-Re2__seed2 (60000 frames; the live run has 30000)" in done.stdout
    assert (record / "Ant-v4__ERL-Re2__seed2/progress.csv").read_bytes() == before
    assert not (record / "Ant-v4__ERL-Re2__seed2/policy.pt").exists()
    assert last_frames(record / "HalfCheetah-v4__ERL-Re2__seed1/progress.csv") == 100_000
    assert (record / "HalfCheetah-v4__ERL-Re2__seed1/policy.pt").read_bytes() == b"policy of HalfCheetah-v4__ERL-Re2__seed1"
    assert last_frames(record / "Hopper-v4__ERL-Re2__seed1/progress.csv") == 40_000
    assert not (record / "Hopper-v4__ERL-Re2__seed1/policy.pt").exists()  # not finished: no policy committed yet
    assert last_frames(record / "Ant-v4__ERL-Re2__seed1/progress.csv") == 100_000
    assert not (record / "Ant-v4__ERL-Re2__seed1/policy.pt").exists()  # its policy may still be an older checkpoint's
    assert (record / "jobs/Hopper-v4__seed1.log").read_text() == "log of Hopper-v4__ERL-Re2__seed1\n"
    snapshot = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    assert table(repo, out, "--copy").returncode == 0  # copying again changes nothing
    assert {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()} == snapshot


def test_an_unknown_argument_is_one_line_exit_2(tmp_path):
    done = table(tmp_path / "repo", tmp_path / "out", "--cpoy")
    assert done.returncode == 2 and done.stderr == "run_table.sh: error: unknown argument '--cpoy' (accepted: --copy, --queue, or none to run)\n"
