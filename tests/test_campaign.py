"""results/run_campaign.sh: the order in which a new machine starts the 1M runs, and the rules by which
--copy puts a run's rows into results/ without ever shortening or replacing a record that reaches further."""
import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "results" / "run_campaign.sh"
TASKS = ("HalfCheetah-v4", "Hopper-v4")


def campaign(repo: Path, out: Path, *args: str) -> str:
    env = {**os.environ, "REPO": str(repo), "OUT": str(out), "SRC": str(out / "no-src")}
    done = subprocess.run(["bash", str(SCRIPT), *args], check=False, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def write_rows(run_dir: Path, last: int, step: int = 10_000) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    frames = list(range(step, last + 1, step))
    (run_dir / "progress.csv").write_text("frames,best_reward\n" + "".join(f"{f},{f / 100}\n" for f in frames))
    (run_dir / "config.json").write_text(f'{{"last": {last}}}\n')


def last_frames(path: Path) -> int:
    return int(path.read_text().splitlines()[-1].split(",")[0])


def test_a_new_machine_resumes_checkpointed_runs_then_starts_those_furthest_behind(tmp_path):
    repo, out = tmp_path / "repo", tmp_path / "out"
    committed = {("HalfCheetah-v4", 1): 500_000, ("HalfCheetah-v4", 2): 100_000, ("HalfCheetah-v4", 3): 300_000,
                 ("Hopper-v4", 1): 50_000, ("Hopper-v4", 3): 700_000}  # Hopper seed 2: no rows yet
    for (task, seed), frames in committed.items():
        write_rows(repo / "results/1M/erl_re2" / f"{task}__ERL-Re2__seed{seed}", frames)
    live = out / "1M/erl_re2/Hopper-v4__ERL-Re2__seed3"  # the one run with a checkpoint on this machine
    write_rows(live, 20_000)
    (live / "checkpoint.pt").write_bytes(b"x")

    jobs = [line.split() for line in campaign(repo, out, "--queue").splitlines()]

    part1 = [j for j in jobs if j[4] == "200000"]
    assert [(j[1], j[3]) for j in part1] == [(g, s) for s in "123" for g in ("erl_re2", "phi_grad_paper")]
    assert all(j[5:] == ["-phi_grad", "paper"] for j in part1 if j[1] == "phi_grad_paper")
    part2 = [(j[2], int(j[3])) for j in jobs if j[4] == "1000000"]
    assert jobs[len(part1):] == [["1M", "erl_re2", t, str(s), "1000000"] for t, s in part2]
    assert part2 == [("Hopper-v4", 3), ("Hopper-v4", 2), ("Hopper-v4", 1), ("HalfCheetah-v4", 2),
                     ("HalfCheetah-v4", 3), ("HalfCheetah-v4", 1)]


def test_copy_never_shortens_a_record_and_cuts_the_200k_arm(tmp_path):
    repo, out = tmp_path / "repo", tmp_path / "out"
    runs = out / "1M/erl_re2"
    write_rows(runs / "HalfCheetah-v4__ERL-Re2__seed1", 250_000)  # live run behind its committed record
    write_rows(runs / "HalfCheetah-v4__ERL-Re2__seed2", 230_000)  # live run ahead of its committed record
    write_rows(runs / "Hopper-v4__ERL-Re2__seed1", 40_000)  # no record yet
    arm = out / "reference_defaults/phi_grad_paper/HalfCheetah-v4__ERL-Re2__phi_grad=paper__seed1"
    write_rows(arm, 120_000)
    for log in (runs / "jobs/HalfCheetah-v4__seed1.log", runs / "jobs/HalfCheetah-v4__seed2.log",
                runs / "jobs/Hopper-v4__seed1.log", arm.parent / "jobs/HalfCheetah-v4__seed1.log"):
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"log of {log.name}\n")
    record = repo / "results/1M/erl_re2"
    write_rows(record / "HalfCheetah-v4__ERL-Re2__seed1", 300_000)
    write_rows(record / "HalfCheetah-v4__ERL-Re2__seed2", 210_000)
    cut = repo / "results/reference_defaults/erl_re2"
    write_rows(cut / "HalfCheetah-v4__ERL-Re2__seed1", 200_000)  # a finished 200k arm from an earlier machine
    before = (cut / "HalfCheetah-v4__ERL-Re2__seed1/progress.csv").read_text()

    said = campaign(repo, out, "--copy")

    assert last_frames(record / "HalfCheetah-v4__ERL-Re2__seed1/progress.csv") == 300_000
    assert "kept results/1M/erl_re2/HalfCheetah-v4__ERL-Re2__seed1 (300000 frames; the live run has 250000)" in said
    assert (cut / "HalfCheetah-v4__ERL-Re2__seed1/progress.csv").read_text() == before
    assert last_frames(record / "HalfCheetah-v4__ERL-Re2__seed2/progress.csv") == 230_000
    assert (record / "HalfCheetah-v4__ERL-Re2__seed2/config.json").read_text() == '{"last": 230000}\n'
    assert (record / "jobs/HalfCheetah-v4__seed2.log").read_text() == "log of HalfCheetah-v4__seed2.log\n"
    # the 200k arm of a run that reached further: its rows up to the first at or past 200k, no more
    rows = (cut / "HalfCheetah-v4__ERL-Re2__seed2/progress.csv").read_text().splitlines()
    assert rows[0] == "frames,best_reward" and last_frames(cut / "HalfCheetah-v4__ERL-Re2__seed2/progress.csv") == 200_000
    assert len(rows) == 1 + 20
    assert last_frames(record / "Hopper-v4__ERL-Re2__seed1/progress.csv") == 40_000
    assert not (cut / "Hopper-v4__ERL-Re2__seed1").exists()  # only HalfCheetah has a 200k arm
    assert last_frames(repo / "results/reference_defaults/phi_grad_paper" / arm.name / "progress.csv") == 120_000
    # copying again changes nothing
    snapshot = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    campaign(repo, out, "--copy")
    assert {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()} == snapshot


def test_two_jobs_of_one_run_never_run_at_once_and_a_committed_200k_arm_is_not_run_again(tmp_path):
    """Part 1 takes HalfCheetah's default runs to 200k and part 2 takes the same runs to 1M: when both jobs of
    one run are in flight (a run that a new machine restarted from 0), the second waits for the first and then
    continues the run, instead of being refused by the run's lock and leaving it at 200k."""
    repo, out, calls, said = tmp_path / "repo", tmp_path / "out", tmp_path / "calls.txt", tmp_path / "driver.out"
    fake = tmp_path / "python"  # stands in for run_re2.py: notes when each job starts and ends
    fake.write_text("#!/usr/bin/env bash\n"
                    'seed=$5; frames=$7; group=$(basename "$9"); now() { date +%s.%N; }\n'
                    f'echo "start $group $seed $frames $(now)" >> {calls}\n'
                    # Seed 1's 200k job lasts until the other slot has reached seed 1's 1M job: until the driver says
                    # that job waits, or (were it not to wait) that job has started. 60 s is only a cap.
                    'if [ "$group$seed$frames" = erl_re21200000 ]; then\n'
                    '  for _ in $(seq 1200); do\n'
                    f'    grep -q "wait 1M/erl_re2 HalfCheetah-v4 seed 1" {said} && break\n'
                    f'    grep -q "start erl_re2 1 1000000" {calls} && break\n'
                    '    sleep 0.05\n'
                    '  done\n'
                    'fi\n'
                    f'echo "end $group $seed $frames $(now)" >> {calls}\n')
    fake.chmod(0o755)
    live = out / "1M/erl_re2/HalfCheetah-v4__ERL-Re2__seed1"  # restarted here from 0: resumes first in part 2
    write_rows(live, 20_000)
    (live / "checkpoint.pt").write_bytes(b"x")
    # seed 2: its 200k arm is committed from an earlier run while a new run of it continues on this machine
    write_rows(repo / "results/reference_defaults/erl_re2/HalfCheetah-v4__ERL-Re2__seed2", 200_000)
    write_rows(out / "1M/erl_re2/HalfCheetah-v4__ERL-Re2__seed2", 30_000)
    env = {**os.environ, "REPO": str(repo), "OUT": str(out), "SRC": str(out / "no-src"), "PYTHON": str(fake)}
    with open(said, "w") as stdout:  # a file the slow job can read while the driver runs
        done = subprocess.run(["bash", str(SCRIPT)], check=False, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    assert done.returncode == 0, done.stderr

    spans: dict[tuple[str, str], list[float]] = {}  # the default runs' jobs: (seed, frames) -> [start, end]
    for what, group, seed, frames, when in (line.split() for line in calls.read_text().splitlines()):
        if group == "erl_re2":
            spans.setdefault((seed, frames), []).append(float(when))
    first, second = spans[("1", "200000")], spans[("1", "1000000")]
    assert second[0] >= first[1], f"seed 1's 1M job started at {second[0]}, before its 200k job ended at {first[1]}"
    assert ("2", "200000") not in spans and ("2", "1000000") in spans
    assert "wait 1M/erl_re2 HalfCheetah-v4 seed 1" in said.read_text()
