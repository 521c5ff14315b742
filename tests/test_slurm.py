"""``bash run.sh --slurm`` on a real single-node Slurm (Debian's slurmctld, slurmd and munge),
started by ``tests/slurm_cluster.sh`` inside a network namespace that has only the loopback
interface; the job script and option checks of ``run.sh`` (no daemons); local sweeps.

Without Slurm (or root, or unshare) the cluster tests skip with a one-line reason;
``ERL_RE2_REQUIRE_SLURM=1`` (set by ``.ci/run``) turns that into a failure.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REQUIRE_SLURM = os.environ.get("ERL_RE2_REQUIRE_SLURM") == "1"
CLUSTER_TOOLS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo", "slurmctld", "slurmd", "munged", "mungekey",
                 "unshare", "nsenter", "ip")
# Two tiny runs' worth of work (as tests/test_run.py's TINY): ~15 s each, three generations of learning.
FLAGS = ["-num_frames", "1500", "-init_steps", "500", "-test_episodes", "2", "-max_episode_steps", "100",
         "-batch_size", "32", "-wandb_mode", "disabled"]
WAIT_S = 300


def rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "progress.csv", newline="") as f:
        return list(csv.DictReader(f))


def learning(run_dir: Path) -> bool:
    """Has the run logged a generation with learner iterations yet?"""
    return (run_dir / "progress.csv").is_file() and any(r.get("critic_loss") for r in rows(run_dir))


def without_timing(table: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("time_s", "fps")} for r in table]


def run_dirs(logdir: Path) -> dict[int, Path]:
    """Run folders under logdir by seed (one run per seed in these sweeps), wherever they nest."""
    found: dict[int, list[Path]] = {}
    for config in logdir.rglob("config.json"):
        found.setdefault(json.loads(config.read_text())["seed"], []).append(config.parent)
    assert all(len(dirs) == 1 for dirs in found.values()), f"more than one run folder for a seed: {found}"
    return {seed: dirs[0] for seed, dirs in found.items()}


def run_sh(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """bash run.sh ARGS; on timeout its whole process group (the runs it started too) is killed."""
    proc = subprocess.Popen(["bash", str(ROOT / "run.sh"), *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env={**os.environ, "PYTHON": sys.executable, **(env or {})})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"bash run.sh {' '.join(args)} still running after {timeout} s\n{out}\n{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


# --- the job script and the option checks (no daemons) -----------------------------------------

def test_dry_run_prints_one_array_job_for_the_sweep(tmp_path):
    logdir = tmp_path / "logs"
    proc = run_sh("--slurm", "-n", "-j", "3", "--partition=gpu", "--time", "2-00:00:00", "--cpus-per-task=4",
                  "--gpus-per-task=1", "--account=lab", "--mem=8G", "--qos=normal", "HalfCheetah-v4", "Hopper-v4",
                  "--", "-num_frames", "200000", "-RL", env={"SEEDS": "1 2", "LOGDIR": str(logdir)})
    assert proc.returncode == 0, proc.stderr
    script = proc.stdout
    directives = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    for expected in ("--array=0-3%3", "--ntasks=1", "--cpus-per-task=4", "--gpus-per-task=1", "--partition=gpu",
                     "--time=2-00:00:00", "--account=lab", "--mem=8G", "--qos=normal", "--requeue",
                     "--signal=B:USR1@120", "--open-mode=append", f"--output={logdir}/jobs/%A_%a.log"):
        assert f"#SBATCH {expected}" in directives, (expected, directives)
    commands = re.findall(r"^  (\d)\) run=\((.*)\) ;;$", script, re.MULTILINE)
    assert [int(i) for i, _ in commands] == [0, 1, 2, 3]
    for (_, command), (task, seed) in zip(commands, [("HalfCheetah-v4", 1), ("HalfCheetah-v4", 2), ("Hopper-v4", 1),
                                                     ("Hopper-v4", 2)]):
        assert command == (f"{sys.executable} run_re2.py -env {task} -seed {seed} -logdir {logdir} -threads 4 "
                           "-num_frames 200000 -RL")
    assert 'kill -TERM "$child" 2> /dev/null' in script and 'scontrol requeue "$task"' in script
    assert f"cd {ROOT}" in script
    assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0  # valid bash
    assert not logdir.exists()  # a dry run writes nothing


def test_dry_run_defaults_one_cpu_and_no_cap(tmp_path):
    proc = run_sh("--slurm", "-n", "Hopper-v4", env={"SEEDS": "3", "LOGDIR": str(tmp_path / "l")})
    assert proc.returncode == 0, proc.stderr
    assert "#SBATCH --array=0-0%1" in proc.stdout and "#SBATCH --cpus-per-task=1" in proc.stdout
    assert "-env Hopper-v4 -seed 3 " in proc.stdout and "-threads 1" in proc.stdout


def test_local_dry_run_is_unchanged(tmp_path):
    proc = run_sh("-n", "-j", "2", "Hopper-v4", "--", "-RL", env={"SEEDS": "1 2", "LOGDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and all("run_re2.py -env Hopper-v4 -seed" in line and line.endswith(" 2>&1") for line in lines)
    assert "-RL" in lines[0] and f">> {tmp_path}/jobs/Hopper-v4__seed1.log" in lines[0]


@pytest.mark.parametrize(("args", "env", "needle"), [
    (["--slurm", "--time=2"], {}, "--time must be a Slurm time"),
    (["--slurm", "--time", "soon"], {}, "--time must be a Slurm time"),
    (["--slurm", "--cpus-per-task=0"], {}, "--cpus-per-task must be a positive integer (got 0)"),
    (["--slurm", "--gpus-per-task=many"], {}, "--gpus-per-task must be N or TYPE:N"),
    (["--slurm", "--mem=lots"], {}, "--mem must be a size such as 4G"),
    (["--slurm", "--partition"], {}, "--partition needs a value"),
    (["--slurm", "--partition=a b"], {}, "--partition needs a value without spaces"),
    (["--slurm", "--time=10", "--time=20"], {}, "--time given twice"),
    (["--slurm", "--array=0-3"], {}, "--array is set by run.sh"),
    (["--slurm", "--no-requeue"], {}, "--no-requeue is set by run.sh"),
    (["--slurm", "--frobnicate=1"], {}, "unknown option --frobnicate (accepted: -j N, -n, --slurm"),
    (["--slurm", "-x"], {}, "unknown option -x"),
    (["--partition=cpu"], {}, "--partition is an sbatch option: it needs --slurm"),
    (["--slurm", "-j", "0"], {}, "-j must be a positive integer (got 0)"),
    (["--slurm", "-j"], {}, "-j needs a number"),
    (["--slurm"], {"SEEDS": "1 x"}, "SEEDS must be non-negative integers"),
    (["--slurm", "Hopper-v4", "--", "-seed", "3"], {}, "-seed cannot follow --"),
    (["--slurm", "Hopper-v4", "--", "-logdir", "x"], {}, "-logdir cannot follow --"),
    (["--slurm", "Hoppr-v4"], {}, "-env: unknown task 'Hoppr-v4'; did you mean Hopper-v4"),
    (["--slurm", "Hopper-v4", "--", "-pop_size", "1"], {}, "-pop_size must be an integer >= 2 (got 1)"),
    (["--slurm", "Hopper-v4", "--", "-rl_algo", "sac"], {}, "argument -rl_algo: invalid choice: 'sac'"),
    (["--slurm"], {"LOGDIR": "my logs"}, "LOGDIR must not contain spaces"),
    (["--status", "a", "b"], {}, "--status takes one optional argument"),
    (["-j", "2", "--status"], {}, "--status must come first"),
])
def test_bad_options_exit_2_with_one_line(args, env, needle, tmp_path):
    env = {"LOGDIR": str(tmp_path / "logs"), **env}
    proc = run_sh("-n", *args, env=env)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr
    assert proc.stdout == ""


# --- local sweeps ---------------------------------------------------------------------------------

def test_local_sweep_skips_a_run_held_by_another_process(tmp_path):
    flags = [*FLAGS[2:], "-num_frames", "20000", "-threads", "1"]  # long enough to be still running
    holder = subprocess.Popen([sys.executable, "run_re2.py", "-env", "Hopper-v4", "-seed", "1", "-logdir", str(tmp_path),
                               *flags], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not list(tmp_path.rglob("progress.csv")):
            assert holder.poll() is None and time.time() < deadline, holder.communicate()
            time.sleep(0.2)
        proc = run_sh("-j", "1", "Hopper-v4", "--", *flags, env={"SEEDS": "1", "LOGDIR": str(tmp_path)})
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        assert "skipped (held by another process): Hopper-v4 seed 1" in proc.stdout
        assert holder.poll() is None  # the holder was left alone
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.communicate(timeout=60)


def test_status_asks_the_lifecycle_module(tmp_path):
    recorder = tmp_path / "python"
    recorder.write_text('#!/bin/sh\necho "$@"\n')
    recorder.chmod(0o755)
    proc = run_sh("--status", str(tmp_path / "logs"), env={"PYTHON": str(recorder)})
    assert proc.returncode == 0 and proc.stdout == f"-m core.lifecycle status {tmp_path / 'logs'}\n", proc
    proc = run_sh("--status", env={"PYTHON": str(recorder), "LOGDIR": "elsewhere"})
    assert proc.stdout == "-m core.lifecycle status elsewhere\n"


# --- a real Slurm ---------------------------------------------------------------------------------

def _skip_or_fail(reason: str) -> None:
    if REQUIRE_SLURM:
        pytest.fail(f"{reason} (ERL_RE2_REQUIRE_SLURM=1)")
    pytest.skip(reason)


class Cluster:
    """A single-node Slurm in its own loopback-only network namespace; clients run in it via nsenter."""

    def __init__(self, proc: subprocess.Popen, conf: str):
        self.proc, self.env = proc, {**os.environ, "SLURM_CONF": conf, "PYTHON": sys.executable}

    def run(self, *cmd: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", f"--target={self.proc.pid}", "--net", "--", *cmd], cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout, check=False, env={**self.env, **(env or {})})

    def submit(self, logdir: Path, seeds: str, *args: str) -> str:
        proc = self.run("bash", "run.sh", "--slurm", *args, env={"SEEDS": seeds, "LOGDIR": str(logdir)})
        assert proc.returncode == 0, proc.stderr
        job = re.search(r"^submitted job (\d+): ", proc.stdout, re.MULTILINE)
        assert job, proc.stdout
        assert f"squeue -j {job[1]}" in proc.stdout and f"scancel {job[1]}" in proc.stdout
        assert f"bash run.sh --status {logdir}" in proc.stdout
        return job[1]

    def tasks(self, job: str) -> dict[int, dict[str, str]]:
        """Array index -> the task's record (JobState, Restarts, ExitCode, ...), from scontrol (no accounting)."""
        out = self.run("scontrol", "-o", "show", "job", job).stdout
        records = [dict(field.split("=", 1) for field in line.split() if "=" in field) for line in out.splitlines()]
        return {int(r["ArrayTaskId"]): r for r in records if r.get("ArrayTaskId", "N/A").isdigit()}

    def wait(self, job: str, logdir: Path) -> dict[int, dict[str, str]]:
        deadline = time.time() + WAIT_S
        while self.run("squeue", "-h", "-j", job).stdout.strip():
            if time.time() > deadline:
                self.run("scancel", job)
                logs = "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted((logdir / "jobs").glob("*.log")))
                pytest.fail(f"job {job} not done after {WAIT_S} s\n{logs}")
            time.sleep(1)
        return self.tasks(job)


@pytest.fixture(scope="module")
def cluster():
    missing = [tool for tool in CLUSTER_TOOLS if shutil.which(tool) is None]
    if missing:
        _skip_or_fail(f"no Slurm here (missing {', '.join(missing)}; apt-get install slurm-wlm slurmctld slurmd munge)")
    if os.geteuid() != 0:
        _skip_or_fail("the Slurm test cluster needs root (network namespace, daemons run as SlurmUser=root)")
    proc = subprocess.Popen(["unshare", "--net", "--pid", "--mount", "--fork", "--mount-proc", "bash",
                             str(ROOT / "tests" / "slurm_cluster.sh")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = proc.stdout.readline().split()
    if ready[:1] != ["ready"]:
        proc.stdin.close()
        err = proc.stderr.read().strip()
        proc.wait(timeout=60)
        if err.startswith("unshare:"):  # no permission for namespaces here
            _skip_or_fail(err.splitlines()[0])
        pytest.fail(f"the test cluster did not start:\n{err}")
    try:
        yield Cluster(proc, ready[1])
    finally:
        proc.stdin.close()  # the helper cancels every job, stops each daemon by PID, removes its folder
        proc.wait(timeout=120)
        assert proc.returncode == 0, proc.stderr.read()


@pytest.fixture(scope="module")
def finished_sweep(cluster, tmp_path_factory) -> tuple[Path, str, dict]:
    """Hopper-v4 seeds 1 and 2 through run.sh --slurm, both at once, uninterrupted."""
    logdir = tmp_path_factory.mktemp("sweep")
    job = cluster.submit(logdir, "1 2", "-j", "2", "Hopper-v4", "--", *FLAGS)
    return logdir, job, cluster.wait(job, logdir)


def test_slurm_sweep_runs_every_run_to_the_end(cluster, finished_sweep):
    links = cluster.run("ip", "-o", "link", "show").stdout.splitlines()
    assert [line.split(": ")[1] for line in links] == ["lo"]  # the daemons can reach nothing but loopback
    logdir, job, tasks = finished_sweep
    assert sorted(tasks) == [0, 1]
    assert all(t["JobState"] == "COMPLETED" and t["ExitCode"] == "0:0" and t["Restarts"] == "0" for t in tasks.values()), tasks
    assert (logdir / "jobs" / f"{job}.sbatch").is_file()
    runs = run_dirs(logdir)
    assert sorted(runs) == [1, 2]
    for seed, run_dir in runs.items():
        table = rows(run_dir)
        assert int(table[-1]["frames"]) >= 1500 and [int(r["generation"]) for r in table] == list(range(1, len(table) + 1))
        assert any(r["critic_loss"] for r in table)
        log = (logdir / "jobs" / f"{job}_{seed - 1}.log").read_text()
        assert f"-seed {seed} " in log and "attempt 1" in log and "run exited with code 0" in log


def test_a_job_sbatch_refuses_leaves_nothing_behind(cluster, tmp_path):
    proc = cluster.run("bash", "run.sh", "--slurm", "--partition=nosuchpartition", "Hopper-v4", "--", *FLAGS,
                       env={"SEEDS": "1", "LOGDIR": str(tmp_path)})
    assert proc.returncode == 1, proc
    assert "invalid partition" in proc.stderr.lower() and "nothing was submitted" in proc.stderr
    assert list((tmp_path / "jobs").iterdir()) == [] and cluster.run("squeue", "-h").stdout == ""


def test_resubmitting_a_finished_sweep_skips_its_runs(cluster, finished_sweep):
    logdir, _, _ = finished_sweep
    before = {seed: (run_dir, rows(run_dir)) for seed, run_dir in run_dirs(logdir).items()}
    job = cluster.submit(logdir, "1 2", "Hopper-v4", "--", *FLAGS)
    tasks = cluster.wait(job, logdir)
    assert all(t["JobState"] == "COMPLETED" and t["ExitCode"] == "0:0" for t in tasks.values()), tasks
    assert {seed: (run_dir, rows(run_dir)) for seed, run_dir in run_dirs(logdir).items()} == before


def test_requeued_and_time_limited_tasks_resume_to_the_uninterrupted_rows(cluster, finished_sweep):
    """Seed 1's task is requeued (scontrol requeue: TERM to the whole job, Slurm requeues it);
    seed 2's gets USR1 on its batch shell alone, as --signal=B:USR1@120 sends it before a time
    limit (the task then requeues itself). Both once learning is under way, in the middle of a
    generation (its time is mostly learner iterations)."""
    reference = {seed: rows(run_dir) for seed, run_dir in run_dirs(finished_sweep[0]).items()}
    logdir = finished_sweep[0].parent / "interrupted"
    job = cluster.submit(logdir, "1 2", "-j", "2", "Hopper-v4", "--", *FLAGS)
    interrupt = {1: ["scontrol", "requeue", f"{job}_0"], 2: ["scancel", "--batch", "--signal=USR1", f"{job}_1"]}
    learning_since: dict[int, float] = {}
    deadline = time.time() + WAIT_S
    while interrupt:
        assert time.time() < deadline, "the runs did not start learning in time"
        for seed, run_dir in run_dirs(logdir).items():
            if seed in interrupt and seed not in learning_since and learning(run_dir):
                learning_since[seed] = time.time()
        for seed in [s for s in interrupt if s in learning_since and time.time() - learning_since[s] > 1.0]:
            assert cluster.tasks(job)[seed - 1]["JobState"] == "RUNNING"
            done = cluster.run(*interrupt.pop(seed))
            assert done.returncode == 0, done.stderr
        time.sleep(0.2)
    tasks = cluster.wait(job, logdir)
    for seed, run_dir in run_dirs(logdir).items():
        task, log = tasks[seed - 1], (logdir / "jobs" / f"{job}_{seed - 1}.log").read_text()
        assert task["JobState"] == "COMPLETED" and task["ExitCode"] == "0:0" and task["Restarts"] == "1", task
        first, second = log.split("attempt 2", 1)
        assert "attempt 1" in first and "run exited with code 143" in first, log
        assert "run exited with code 0" in second, log
        table = rows(run_dir)
        generations = [int(r["generation"]) for r in table]
        assert generations == list(range(1, len(table) + 1)), f"seed {seed}: a generation logged twice or missing"
        assert without_timing(table) == without_timing(reference[seed]), f"seed {seed}"
    assert "time limit near: checkpoint written, requeueing" in (logdir / "jobs" / f"{job}_1.log").read_text()
