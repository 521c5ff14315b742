"""The sweep (``core/sweep.py``, ``bash run.sh``): its option checks and dry runs (no daemons), local
sweeps, and ``--slurm`` through submitit on a real single-node Slurm (Debian's slurmctld, slurmd and
munge), started by ``tests/slurm_cluster.sh`` inside a network namespace that has only the loopback
interface.

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
import textwrap
import time
from pathlib import Path

import pytest
from test_run import gate_env

from core.slurm_options import slurm_minutes
from core.sweep import Sweep, SweepError

ROOT = Path(__file__).resolve().parents[1]
REQUIRE_SLURM = os.environ.get("ERL_RE2_REQUIRE_SLURM") == "1"
CLUSTER_TOOLS = ("sbatch", "srun", "squeue", "scontrol", "scancel", "sinfo", "slurmctld", "slurmd", "munged", "mungekey",
                 "unshare", "nsenter", "ip")
# Two tiny runs' worth of work (as tests/test_run.py's TINY): ~15 s each, three generations of learning.
FLAGS = ["-num_frames", "1500", "-init_steps", "500", "-test_episodes", "2", "-max_episode_steps", "100",
         "-batch_size", "32", "-wandb_mode", "disabled"]
WAIT_S = 300


def rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "progress.csv", newline="") as f:
        return list(csv.DictReader(f))


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

def test_slurm_dry_run_prints_submitits_job_array(tmp_path):
    logdir = tmp_path / "logs"
    proc = run_sh("--slurm", "-n", "-j", "3", "--partition=gpu", "--time", "2-00:00:00", "--cpus-per-task=4",
                  "--gpus-per-task=1", "--account=lab", "--mem=8G", "--qos=normal", "--reservation=r1", "HalfCheetah-v4",
                  "Hopper-v4", "--", "-num_frames", "200000", "-RL", env={"SEEDS": "1 2", "LOGDIR": str(logdir)})
    assert proc.returncode == 0, proc.stderr
    script = proc.stdout
    directives = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    for expected in ("--array=0-3%3", "--cpus-per-task=4", "--gpus-per-task=1", "--partition=gpu", "--time=2880",
                     "--account=lab", "--mem=8G", "--qos=normal", "--reservation=r1", "--requeue", "--signal=USR2@120",
                     "--open-mode=append", f"--output={logdir}/jobs/%A_%a_0_log.out", f"--chdir={ROOT}",
                     "--job-name=erl-re2"):
        assert f"#SBATCH {expected}" in directives, (expected, directives)
    srun = [line for line in script.splitlines() if line.startswith("srun ")]
    assert len(srun) == 1 and "--cpus-per-task=4" in srun[0] and srun[0].endswith(f"-m submitit.core._submit {logdir}/jobs")
    commands = re.findall(r"^# array index (\d): (.*)$", script, re.MULTILINE)
    assert [int(i) for i, _ in commands] == [0, 1, 2, 3]
    for (_, command), (task, seed) in zip(commands, [("HalfCheetah-v4", 1), ("HalfCheetah-v4", 2), ("Hopper-v4", 1),
                                                     ("Hopper-v4", 2)]):
        assert command == (f"{sys.executable} run_re2.py -env {task} -seed {seed} -logdir {logdir} -threads 4 "
                           "-num_frames 200000 -RL")
    assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0  # valid bash
    assert not logdir.exists()  # a dry run writes nothing


def test_slurm_dry_run_defaults_one_cpu_and_no_cap(tmp_path):
    proc = run_sh("--slurm", "--time=1:00:00", "-n", "Hopper-v4", "Walker2d-v4",
                  env={"SEEDS": "3", "LOGDIR": str(tmp_path / "l")})
    assert proc.returncode == 0, proc.stderr
    assert "#SBATCH --array=0-1%2" in proc.stdout and "#SBATCH --cpus-per-task=1" in proc.stdout
    assert "#SBATCH --time=60" in proc.stdout
    assert "-env Hopper-v4 -seed 3 " in proc.stdout and "-threads 1" in proc.stdout


@pytest.mark.parametrize(("text", "minutes"), [("90", 90), ("5:30", 6), ("01:02:03", 63), ("2-12", 3600),
                                                ("1-2:30", 1590), ("1-00:00:00", 1440), ("0-0:5:1", 6)])
def test_slurm_time_formats(text, minutes):
    assert slurm_minutes(text) == minutes


@pytest.mark.parametrize("text", ["soon", "1-", ":5", "1:2:3:4", "1-2:3:4:5", "-5", "1.5", "", "UNLIMITED"])
def test_slurm_time_refuses_what_is_not_one(text):
    assert slurm_minutes(text) is None


def test_local_dry_run(tmp_path):
    proc = run_sh("-n", "-j", "2", "Hopper-v4", "--", "-RL", env={"SEEDS": "1 2", "LOGDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and all("run_re2.py -env Hopper-v4 -seed" in line and line.endswith(" 2>&1") for line in lines)
    assert "-RL" in lines[0] and f">> {tmp_path}/jobs/Hopper-v4__RL-only__seed1.log" in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "env", "needle"), [
    (["--slurm"], {"SLURM_CONF": "/dev/null"}, "--time not given, and sinfo cannot tell the partition's"),
    (["--slurm", "--time=4"], {}, "--time must be a Slurm time"),
    (["--slurm", "--time", "soon"], {}, "--time must be a Slurm time"),
    (["--slurm", "--time=10", "--cpus-per-task=0"], {}, "--cpus-per-task must be a positive integer (got 0)"),
    (["--slurm", "--time=10", "--gpus-per-task=many"], {}, "--gpus-per-task must be N or TYPE:N"),
    (["--slurm", "--time=10", "--mem=lots"], {}, "--mem must be a size such as 4G"),
    (["--slurm", "--time=10", "--partition"], {}, "argument --partition: expected one argument"),
    (["--slurm", "--time=10", "--partition=a b"], {}, "--partition needs a value without spaces"),
    (["--slurm", "--time=10", "--time=20"], {}, "--time given twice"),
    (["--slurm", "--time=10", "--array=0-3"], {}, "--array is set by the sweep"),
    (["--slurm", "--time=10", "--no-requeue"], {}, "--no-requeue is set by the sweep"),
    (["--slurm", "--time=10", "--frobnicate=1"], {}, "unknown option --frobnicate (accepted: TASK ..., -j N, -n"),
    (["--slurm", "--time=10", "--partitio=cpu"], {}, "unknown option --partitio"),  # no abbreviations
    (["--slurm", "-x"], {}, "unknown option -x"),
    (["--partition=cpu"], {}, "--partition is an sbatch option: it needs --slurm"),
    (["--slurm", "-j", "0"], {}, "-j must be a positive integer (got 0)"),
    (["-j"], {}, "argument -j: expected one argument"),
    (["--slurm"], {"SEEDS": "1 x"}, "SEEDS / --seeds must be non-negative integers"),
    ([], {"SEEDS": " "}, "SEEDS / --seeds must be non-negative integers"),
    (["Hopper-v4", "--", "-seed", "3"], {}, "-seed cannot be a run flag"),
    (["Hopper-v4", "--", "-logdir", "x"], {}, "-logdir cannot be a run flag"),
    (["Hoppr-v4"], {}, "-env: unknown task 'Hoppr-v4'; did you mean Hopper-v4"),
    (["Hopper-v4", "--", "-pop_size", "1"], {}, "-pop_size must be an integer >= 2 (got 1)"),
    (["Hopper-v4", "--", "-rl_algo", "sac"], {}, "argument -rl_algo: invalid choice: 'sac'"),
    (["--status", "a", "b"], {}, "--status takes one optional argument"),
    (["-j", "2", "--status"], {}, "--status must come first"),
])
def test_bad_options_exit_2_with_one_line(args, env, needle, tmp_path):
    env = {"LOGDIR": str(tmp_path / "logs"), **env}
    proc = run_sh(*(args if args[:1] == ["--status"] else ["-n", *args]), env=env)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.count("\n") == 1 and needle in proc.stderr, proc.stderr
    assert proc.stdout == "" and not (tmp_path / "logs").exists()


def test_bad_options_are_refused_before_a_local_sweep_starts(tmp_path):
    proc = run_sh("Hopper-v4", "--", "-pop_size", "1", env={"LOGDIR": str(tmp_path / "logs")})  # no -n
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and proc.stdout == ""
    assert not (tmp_path / "logs").exists()


def test_the_python_api_refuses_bad_input_with_sweep_error(tmp_path):
    with pytest.raises(SweepError, match="argument -rl_algo: invalid choice: 'sac'"):  # argparse's refusal, not its exit
        Sweep(["Hopper-v4"], seeds=[1], flags=["-rl_algo", "sac"], logdir=tmp_path)
    with pytest.raises(SweepError, match="the seeds must be non-negative integers"):
        Sweep(["Hopper-v4"], seeds=["1"], logdir=tmp_path)
    sweep = Sweep(["Hopper-v4"], seeds=[1, 2], flags=["-RL"], logdir=tmp_path)
    assert [Path(d).name for d in sweep.run_dirs] == ["Hopper-v4__RL-only__seed1", "Hopper-v4__RL-only__seed2"]
    with pytest.raises(SweepError, match="--time must be a Slurm time"):
        sweep.submit(time="2")
    with pytest.raises(SweepError, match="unknown sbatch option --partiton"):
        sweep.submit(time="10", partiton="cpu")
    assert "#SBATCH --mem-per-cpu=2G" in sweep.sbatch_script(time="10", mem_per_cpu="2G")
    assert list(tmp_path.iterdir()) == []


# --- local sweeps ---------------------------------------------------------------------------------

def test_local_sweep_skips_a_run_held_by_another_process(tmp_path):
    flags = [*FLAGS, "-threads", "1"]
    holder = subprocess.Popen([sys.executable, "run_re2.py", "-env", "Hopper-v4", "-seed", "1", "-logdir", str(tmp_path),
                               *flags], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=gate_env("start:2"))  # held after its first generation until it is signalled
    try:
        deadline = time.time() + WAIT_S
        while not (tmp_path / "gate_seed1.json").exists():
            assert holder.poll() is None and time.time() < deadline, holder.communicate()
            time.sleep(0.2)
        proc = run_sh("-j", "1", "Hopper-v4", "--", *flags, env={"SEEDS": "1", "LOGDIR": str(tmp_path)})
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        assert "skipped (held by another process): Hopper-v4 seed 1" in proc.stdout
        assert holder.poll() is None  # the holder was left alone
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.communicate(timeout=60)


def runs_alive(logdir: Path) -> set[int]:
    """PIDs of the run_re2.py processes writing under logdir (not counting a run's own short-lived forks,
    which share its command line)."""
    parents = {}
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if b"run_re2.py" in cmdline and str(logdir).encode() in cmdline:
            parents[int(proc.name)] = ppid
    return {pid for pid, ppid in parents.items() if ppid not in parents}


def test_local_sweep_runs_at_most_j_at_once(tmp_path):
    """Three short runs (no learning: a few seconds each, mostly start-up) with -j 2."""
    logdir = tmp_path / "logs"
    sweep = subprocess.Popen(["bash", "run.sh", "-j", "2", "Hopper-v4", "--", *FLAGS, "-num_frames", "300"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHON": sys.executable, "SEEDS": "1 2 3", "LOGDIR": str(logdir)})
    seen, most, deadline = set(), 0, time.time() + 180
    while sweep.poll() is None and time.time() < deadline:
        alive = runs_alive(logdir)
        seen |= alive
        most = max(most, len(alive))
        time.sleep(0.05)
    out, err = sweep.communicate(timeout=60)
    assert sweep.returncode == 0, (out, err)
    assert len(seen) == 3 and most == 2, (seen, most)  # all three ran, two at a time, never three
    assert sorted(re.findall(r"^finished: Hopper-v4 seed (\d)$", out, re.MULTILINE)) == ["1", "2", "3"], out
    logs = sorted(p.name for p in (logdir / "jobs").iterdir())
    assert logs == [f"{d.name}.log" for d in sorted(run_dirs(logdir).values())]  # one log per run, named as its folder
    status = run_sh("--status", str(logdir))
    assert status.returncode == 0 and len(status.stdout.splitlines()) == 3, status
    assert all(" finished " in line for line in status.stdout.splitlines())


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

    def submit(self, logdir: Path, seeds: str, *args: str, env: dict | None = None) -> str:
        proc = self.run("bash", "run.sh", "--slurm", *args, env={**(env or {}), "SEEDS": seeds, "LOGDIR": str(logdir)})
        assert proc.returncode == 0, proc.stderr
        job = re.search(r"^submitted job array (\d+): ", proc.stdout, re.MULTILINE)
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
                pytest.fail(f"job {job} not done after {WAIT_S} s\n{job_logs(logdir)}")
            time.sleep(1)
        return self.tasks(job)


def job_logs(logdir: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted((logdir / "jobs").glob("*_log.out")))


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


API_SCRIPT = textwrap.dedent("""
    import json, sys
    from core.sweep import Sweep

    sweep = Sweep(["Hopper-v4"], seeds=[1, 2], flags=json.loads(sys.argv[2]), logdir=sys.argv[1])
    submission = sweep.submit(parallel=2, time="10")
    print(json.dumps({"job_id": submission.job_id, "jobs": [job.job_id for job in submission.jobs],
                      "runs": [run.run_dir for run in submission.runs], "planned": sweep.run_dirs}), flush=True)
    print(json.dumps({"results": [job.result() for job in submission.jobs], "status": sweep.status()}))
""")


@pytest.fixture(scope="module")
def finished_sweep(cluster, tmp_path_factory) -> tuple[Path, str, dict]:
    """Hopper-v4 seeds 1 and 2 submitted from Python (core.sweep.Sweep), both at once, uninterrupted:
    the reference rows for the interrupted sweep."""
    logdir = tmp_path_factory.mktemp("sweep")
    proc = cluster.run(sys.executable, "-c", API_SCRIPT, str(logdir), json.dumps(FLAGS), timeout=WAIT_S)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr[-3000:]}\n{job_logs(logdir)}"
    submitted, collected = (json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{"))  # besides submitit's log
    cluster.wait(submitted["job_id"], logdir)  # a result is written just before its task's process exits: let Slurm see it end
    return logdir, submitted, collected


def test_slurm_sweep_from_python_runs_every_run_to_the_end(cluster, finished_sweep):
    links = cluster.run("ip", "-o", "link", "show").stdout.splitlines()
    assert [line.split(": ")[1] for line in links] == ["lo"]  # the daemons can reach nothing but loopback
    logdir, submitted, collected = finished_sweep
    job = submitted["job_id"]
    assert submitted["jobs"] == [f"{job}_0", f"{job}_1"] and submitted["runs"] == submitted["planned"]
    assert collected["results"] == [{"run_dir": run_dir, "outcome": "finished"} for run_dir in submitted["runs"]]
    assert len(collected["status"]) == 2 and all(" finished " in line for line in collected["status"]), collected
    tasks = cluster.tasks(job)
    assert sorted(tasks) == [0, 1]
    assert all(t["JobState"] == "COMPLETED" and t["ExitCode"] == "0:0" and t["Restarts"] == "0" for t in tasks.values()), tasks
    runs = run_dirs(logdir)
    assert sorted(runs) == [1, 2] and [str(runs[1]), str(runs[2])] == submitted["runs"]
    for seed, run_dir in runs.items():
        table = rows(run_dir)
        assert int(table[-1]["frames"]) >= 1500 and [int(r["generation"]) for r in table] == list(range(1, len(table) + 1))
        assert any(r["critic_loss"] for r in table)
        log = (logdir / "jobs" / f"{job}_{seed - 1}_0_log.out").read_text()
        assert f"Hopper-v4 seed {seed}, attempt 1 ({job}_{seed - 1} on " in log and f"-seed {seed} " in log
        assert "run exited with code 0" in log and "attempt 2" not in log


def test_a_job_sbatch_refuses_leaves_nothing_behind(cluster, tmp_path):
    proc = cluster.run("bash", "run.sh", "--slurm", "--time=10", "--partition=nosuchpartition", "Hopper-v4", "--", *FLAGS,
                       env={"SEEDS": "1", "LOGDIR": str(tmp_path)})
    assert proc.returncode == 1, proc
    assert proc.stderr.count("\n") == 1 and "invalid partition" in proc.stderr.lower(), proc.stderr
    assert "nothing was submitted" in proc.stderr
    assert list((tmp_path / "jobs").iterdir()) == [] and cluster.run("squeue", "-h").stdout == ""


@pytest.mark.parametrize(("option", "needle"), [("--time=4", "--time must be a Slurm time"),
                                                ("--frobnicate=1", "unknown option --frobnicate")])
def test_a_bad_option_or_too_short_a_time_submits_nothing(cluster, tmp_path, option, needle):
    args = ["--time=10", option] if option.startswith("--frob") else [option]
    proc = cluster.run("bash", "run.sh", "--slurm", *args, "Hopper-v4", "--", *FLAGS,
                       env={"SEEDS": "1", "LOGDIR": str(tmp_path / "logs")})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and needle in proc.stderr, proc
    assert proc.stdout == "" and not (tmp_path / "logs").exists() and cluster.run("squeue", "-h").stdout == ""


def test_without_time_the_job_gets_the_partitions_limit(cluster, tmp_path):
    """As sbatch without --time: the partition's DefaultTime, else its MaxTime (test: none, infinite;
    short: 30 minutes, at most 2 hours)."""
    env = {"SEEDS": "1", "LOGDIR": str(tmp_path)}
    proc = cluster.run("bash", "run.sh", "--slurm", "-n", "Hopper-v4", env=env)
    assert proc.returncode == 0 and "#SBATCH --time=525600\n" in proc.stdout, proc  # 365 days: no limit
    assert "#SBATCH --partition" not in proc.stdout
    proc = cluster.run("bash", "run.sh", "--slurm", "-n", "--partition=short", "Hopper-v4", env=env)
    assert proc.returncode == 0 and "#SBATCH --time=30\n" in proc.stdout and "#SBATCH --partition=short\n" in proc.stdout
    proc = cluster.run("bash", "run.sh", "--slurm", "-n", "--partition=nosuch", "Hopper-v4", env=env)
    assert proc.returncode == 2 and proc.stderr == ("run.sh: error: --time not given, and sinfo lists no partition nosuch "
                                                    "to read a time limit from: give --time or --partition\n")
    assert list(tmp_path.iterdir()) == []


def test_resubmitting_a_finished_sweep_submits_nothing(cluster, finished_sweep):
    logdir = finished_sweep[0]
    before = {seed: (run_dir, rows(run_dir)) for seed, run_dir in run_dirs(logdir).items()}
    files = sorted((logdir / "jobs").iterdir())
    proc = cluster.run("bash", "run.sh", "--slurm", "--time=10", "Hopper-v4", "--", *FLAGS,
                       env={"SEEDS": "1 2", "LOGDIR": str(logdir)})
    assert proc.returncode == 0, proc.stderr
    assert len(re.findall(r"^not submitted \(finished\): Hopper-v4 seed [12], ", proc.stdout, re.MULTILINE)) == 2, proc.stdout
    assert "nothing to submit: all 2 runs of this sweep are finished or running" in proc.stdout
    assert "submitted job" not in proc.stdout and cluster.run("squeue", "-h").stdout == ""
    assert sorted((logdir / "jobs").iterdir()) == files
    assert {seed: (run_dir, rows(run_dir)) for seed, run_dir in run_dirs(logdir).items()} == before


def test_requeued_and_time_limited_tasks_resume_to_the_uninterrupted_rows(cluster, finished_sweep):
    """Seed 1's task is requeued (scontrol requeue: TERM to the whole job, Slurm requeues it); seed 2's
    gets USR2, as --signal=USR2@120 sends it to the job step before a time limit (submitit's handler
    has the run checkpoint, then requeues the task). Each while its run is held halfway through the learner
    iterations of its first generation of learning (tests/run_gate: it waits there for its stop signal), so
    that both stop in the middle of a generation. Both resume to the rows of the same runs made uninterrupted
    (finished_sweep)."""
    reference = {seed: rows(run_dir) for seed, run_dir in run_dirs(finished_sweep[0]).items()}
    logdir = finished_sweep[0].parent / "interrupted"
    job = cluster.submit(logdir, "1 2", "--time=10", "-j", "2", "Hopper-v4", "--", *FLAGS, env=gate_env("iterations"))
    interrupt = {1: ["scontrol", "requeue", f"{job}_0"], 2: ["scancel", "--signal=USR2", f"{job}_1"]}
    held: dict[int, dict] = {}
    deadline = time.time() + WAIT_S
    while interrupt:
        assert time.time() < deadline, f"the runs did not reach their learner iterations in time\n{job_logs(logdir)}"
        for seed in [s for s in interrupt if (logdir / f"gate_seed{s}.json").exists()]:
            held[seed] = json.loads((logdir / f"gate_seed{seed}.json").read_text())
            assert cluster.tasks(job)[seed - 1]["JobState"] == "RUNNING"
            done = cluster.run(*interrupt.pop(seed))
            assert done.returncode == 0, done.stderr
        time.sleep(0.2)
    tasks = cluster.wait(job, logdir)
    report = []
    for seed, run_dir in run_dirs(logdir).items():
        task, log = tasks[seed - 1], (logdir / "jobs" / f"{job}_{seed - 1}_0_log.out").read_text()
        assert task["JobState"] == "COMPLETED" and task["ExitCode"] == "0:0" and task["Restarts"] == "1", (task, log)
        first, second = log.split(f"Hopper-v4 seed {seed}, attempt 2 ", 1)
        assert f"Hopper-v4 seed {seed}, attempt 1 " in first, log
        stopped = re.search(r"^run exited with code 143, ([0-9.]+) s after the stop signal", first, re.MULTILINE)
        assert stopped and float(stopped[1]) < 30, log  # within Slurm's KillWait (30 s), in fact seconds
        where = held[seed]  # it stopped where it was held, between two learner iterations
        assert (f"(generation {where['generation']} in progress: {where['iterations'] - where['done']} of "
                f"{where['iterations']} learner iterations left)") in first, log
        assert "Resuming " in second and "run exited with code 0" in second and "Traceback" not in log, log
        table = rows(run_dir)
        generations = [int(r["generation"]) for r in table]
        assert generations == list(range(1, len(table) + 1)), f"seed {seed}: a generation logged twice or missing"
        assert without_timing(table) == without_timing(reference[seed]), f"seed {seed}"
        report.append(f"seed {seed}: {task['Restarts']} restart, stopped {stopped[1]} s after the signal, "
                      f"{len(table)} rows equal to the uninterrupted run's, final frames {table[-1]['frames']}")
    requeued, time_limited = ((logdir / "jobs" / f"{job}_{i}_0_log.out").read_text() for i in (0, 1))
    assert "SIGTERM received (requeue, preemption or cancellation)" in requeued
    assert "Caught signal SIGUSR2" in time_limited and "Calling checkpoint method" in time_limited
    assert "submitit requeues this task" in time_limited and f"Requeued job {job}_1" in time_limited
    print("\n" + "\n".join(report))
