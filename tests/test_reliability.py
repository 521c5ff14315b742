"""Faults and bad input a new user meets, one subprocess run on a tiny budget per case:
a full disk during a checkpoint, altered checkpoint bytes, a torn progress row, flags next to
-resume, a too small buffer, non-finite float flags, two processes on one run directory."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from test_run import ROOT, TINY, held, rows, run, start, without_timing

from core.checkpoint import load_checkpoint
from core.logger import COLUMNS, truncate_progress
from core.run_dir import LOCK_FILE, lock_holder
from parameters import build_parser, finite_float

SEED1 = [*TINY, "-theta", "0.5", "-seed", "1"]


def resume(run_dir: Path, *flags: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run_re2.py", "-resume", str(run_dir), *flags], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False, env=env)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("run_re2.py:")]


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(LOCK_FILE, "wandb"))
    return dst


def whole_rows(path: Path) -> bool:
    text = path.read_text()
    lines = text.split("\n")
    return text.endswith("\n") and all(len(line.split(",")) == len(COLUMNS) for line in lines[:-1])


# ---------------------------------------------------------------------- a full disk
def _mount_small_fs(where: Path, size: int) -> bool:
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, check=False).returncode == 0


FAKE_ENOSPC = '''
import builtins, errno, os
_open = builtins.open
_count = [0]
class _Full:
    def __init__(self, f): self.f, self.n = f, 0
    def write(self, b):
        self.n += len(b)
        if self.n > 1_000_000: raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.f.write(b)
    def __getattr__(self, k): return getattr(self.f, k)
    def __enter__(self): return self
    def __exit__(self, *a): self.f.close()
def _fake(path, mode="r", *a, **k):
    f = _open(path, mode, *a, **k)
    if str(path).endswith("checkpoint.pt.tmp"):
        _count[0] += 1
        if _count[0] >= 2: return _Full(f)  # the second checkpoint meets a full disk
    return f
builtins.open = _fake
'''


def test_disk_full_during_checkpoint_keeps_the_previous_one_and_resume_works(seed1_run, tmp_path):
    """A filesystem with room for one checkpoint but not for the second (a tmpfs mounted here as
    root; elsewhere ENOSPC is faked at the checkpoint's file writes, through the real code path)."""
    size = (seed1_run / "checkpoint.pt").stat().st_size
    small = tmp_path / "small"
    mounted = _mount_small_fs(small, int(1.5 * size))
    env = dict(os.environ)
    if not mounted:
        (tmp_path / "fake").mkdir()
        (tmp_path / "fake" / "sitecustomize.py").write_text(FAKE_ENOSPC)
        env["PYTHONPATH"] = f"{tmp_path / 'fake'}{os.pathsep}{env.get('PYTHONPATH', '')}"
    try:
        proc = subprocess.run([sys.executable, "run_re2.py", *SEED1, "-checkpoint_every", "700", "-logdir", str(small)], cwd=ROOT,
                              capture_output=True, text=True, timeout=300, check=False, env=env)
        assert proc.returncode == 1, proc.stderr
        (line,) = error_lines(proc.stderr)
        print(f"\n[{'tmpfs' if mounted else 'faked ENOSPC'}] {line}")
        run_dir = next(small.glob("Hopper-v4__*"))
        assert "could not write checkpoint" in line and f"{run_dir}/checkpoint.pt" in line and "(disk full)" in line
        assert "it needs" in line and "MiB" in line and "the temporary file was removed" in line
        assert f"-resume {run_dir}" in line
        assert not (run_dir / "checkpoint.pt.tmp").exists()
        first = load_checkpoint(str(run_dir))  # the previous checkpoint is whole and verifies
        assert 700 <= first["counters"]["frames"] < 1500
        assert whole_rows(run_dir / "progress.csv")
        done = without_timing(rows(run_dir))
        assert done == without_timing(rows(seed1_run))[: len(done)]
        if mounted:  # free space
            subprocess.run(["mount", "-o", "remount,size=256m", str(small)], check=True)
        resumed = resume(run_dir)
        assert resumed.returncode == 0, resumed.stderr
        assert without_timing(rows(run_dir)) == without_timing(rows(seed1_run))
    finally:
        if mounted:
            subprocess.run(["umount", str(small)], check=False)


# ---------------------------------------------------------------------- altered bytes
def test_altered_checkpoint_bytes_are_refused(seed1_run, tmp_path):
    run_dir = copy_run(seed1_run, tmp_path / "run")
    path = run_dir / "checkpoint.pt"
    with zipfile.ZipFile(path) as z:  # flip one byte in the middle of the largest tensor record
        info = max(z.infolist(), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little"), \
        int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    at = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    data[at] ^= 0x10
    path.write_bytes(bytes(data))
    torch.load(path, map_location="cpu", weights_only=True)  # torch itself does not notice
    before = path.read_bytes()
    proc = resume(run_dir)
    assert proc.returncode == 2
    (line,) = error_lines(proc.stderr)
    assert proc.stderr.strip() == line and "is corrupt" in line and "SHA-256 checksum" in line, proc.stderr
    assert path.read_bytes() == before


# ---------------------------------------------------------------------- torn progress.csv
def test_torn_last_row_is_dropped_when_a_run_is_resumed_finished_or_not(seed1_run, tmp_path):
    run_dir = copy_run(seed1_run, tmp_path / "run")
    whole = (run_dir / "progress.csv").read_text()
    (run_dir / "progress.csv").write_text(whole + "1600,28,4")  # a crash in the middle of a row
    proc = resume(run_dir)
    assert proc.returncode == 0 and "has already finished" in proc.stdout, proc.stderr
    assert (run_dir / "progress.csv").read_text().replace("\r\n", "\n") == whole.replace("\r\n", "\n")
    assert whole_rows(run_dir / "progress.csv")
    # Torn again, then resumed with a larger budget (the unfinished path): the torn row goes, new rows follow.
    # The budget is past the run's own last row: where a run ends depends on the CPU's floating point.
    (run_dir / "progress.csv").write_text(whole + "1600,28,4,3.2,55")
    reference = without_timing(rows(seed1_run))
    extended = int(reference[-1]["frames"]) + 1
    proc = resume(run_dir, "-num_frames", str(extended))
    assert proc.returncode == 0, proc.stderr
    assert whole_rows(run_dir / "progress.csv")
    table = without_timing(rows(run_dir))
    assert table[: len(reference)] == reference and len(table) > len(reference) and int(table[-1]["frames"]) >= extended


@pytest.mark.parametrize("tail", ["", "1", "17", "1600,2", "1600,27,4,1.0", "1600,27,4" + ",x" * (len(COLUMNS) - 3)])
def test_truncate_progress_keeps_whole_rows_only(tmp_path, tail):
    path = tmp_path / "progress.csv"
    lines = [",".join(COLUMNS), ",".join(["10", "1"] + [""] * (len(COLUMNS) - 2)), ",".join(["20", "2"] + [""] * (len(COLUMNS) - 2))]
    path.write_bytes(("\r\n".join(lines) + "\r\n" + tail).encode())
    truncate_progress(str(path), generation=2)
    assert path.read_bytes() == ("\r\n".join(lines) + "\r\n").encode()


# ---------------------------------------------------------------------- flags next to -resume
@pytest.mark.parametrize(("flags", "name"), [(["-seed", "2"], "-seed"), (["-theta", "0.1"], "-theta"),
                                              (["-logdir", "/tmp"], "-logdir"), (["-tag", "x"], "-tag")])
def test_flags_that_cannot_change_on_resume_are_refused(seed1_run, tmp_path, flags, name):
    run_dir = copy_run(seed1_run, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    proc = resume(run_dir, *flags)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"run_re2.py: error: {name} cannot be given with -resume"), proc.stderr
    assert "-num_frames" in proc.stderr  # says what may change
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_resume_applies_and_records_the_flags_that_may_change(seed1_run, tmp_path):
    """-num_frames extends a finished run; threads, wandb mode, checkpoint cadence and device are
    applied and recorded. The extended run equals a run given the larger budget from the start."""
    run_dir = copy_run(seed1_run, tmp_path / "run")
    budget = int(rows(seed1_run)[-1]["frames"]) + 1000  # past the run's own end, wherever this CPU put it
    proc = resume(run_dir, "-num_frames", str(budget), "-threads", "1", "-wandb_mode", "disabled", "-checkpoint_every", "900",
                  "-checkpoint_minutes", "5", "-disable_cuda")
    assert proc.returncode == 0, proc.stderr
    table = rows(run_dir)
    assert int(table[-1]["frames"]) >= budget
    config = json.loads((run_dir / "config.json").read_text())
    s = config["settings"]
    assert (s["num_frames"], s["checkpoint_every"], s["checkpoint_minutes"], s["disable_cuda"]) == (budget, 900, 5.0, True)
    (record,) = config["resumes"]
    assert record["changed"]["num_frames"] == [1500, budget] and record["changed"]["checkpoint_every"] == [50000, 900]
    assert config["sources"]["num_frames"] == "flag (on resume)"
    longer, longer_dir = run([*SEED1, "-num_frames", str(budget)], tmp_path / "longer")
    assert longer.returncode == 0, longer.stderr
    assert without_timing(table) == without_timing(rows(longer_dir))


# ---------------------------------------------------------------------- input refused up front
def test_small_buffer_and_non_finite_flags_are_refused_from_the_shell(tmp_path):
    for flags, message in ((["-buffer_size", "10"], "run_re2.py: error: -buffer_size must be >= 500"),
                           (["-EA_actor_alpha", "nan"], "run_re2.py: error: argument -EA_actor_alpha: must be a finite number (got nan)")):
        proc, _ = run([*TINY, *flags], tmp_path)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and proc.stderr.startswith(message), proc.stderr
    assert not any(tmp_path.iterdir())


FLOAT_FLAGS = [a.option_strings[0] for a in build_parser()._actions if a.type is finite_float]


@pytest.mark.parametrize("flag", FLOAT_FLAGS)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_every_float_flag_refuses_non_finite_values(flag, value, capsys):
    assert len(FLOAT_FLAGS) >= 12
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([f"{flag}={value}"])  # "=" so that "-inf" is not read as a flag
    assert exc.value.code == 2
    assert capsys.readouterr().err == f"run_re2.py: error: argument {flag}: must be a finite number (got {value})\n"


def test_all_float_flags_are_checked():
    floats = [a.option_strings[0] for a in build_parser()._actions if a.type in (float, finite_float)]
    assert floats == FLOAT_FLAGS
    assert isinstance(build_parser().parse_args([]), argparse.Namespace)


# ---------------------------------------------------------------------- one process per run directory
def test_second_process_on_a_run_is_refused_and_a_killed_one_leaves_no_lock(seed1_run, tmp_path):
    # The first process is held (lock taken) after the generation that writes its first checkpoint, at 300 frames
    # (which generation that is, from the uninterrupted run's rows: it depends on the CPU), until it is killed.
    saved = next(int(r["generation"]) for r in rows(seed1_run) if int(r["frames"]) >= 300)
    first = start([*SEED1, "-checkpoint_every", "300"], tmp_path, gate=f"start:{saved + 1}")
    held(first, tmp_path)
    run_dir = next(tmp_path.glob("Hopper-v4__*"))
    assert load_checkpoint(str(run_dir))["counters"]["frames"] >= 300
    for argv in (SEED1 + ["-logdir", str(tmp_path)], ["-resume", str(run_dir)]):
        # Refused at once: the holder never lets the lock go, so an attempt that waited for it would never return.
        try:
            second = subprocess.run([sys.executable, "run_re2.py", *argv], cwd=ROOT, capture_output=True, text=True,
                                    timeout=300, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"run_re2.py {' '.join(argv)} waited for the lock held by process {first.pid} instead of refusing")
        assert second.returncode == 2
        assert second.stderr.count("\n") == 1 and f"is held by process {first.pid} on " in second.stderr, second.stderr
        assert first.poll() is None
    assert lock_holder(str(run_dir)).startswith(f"process {first.pid}")
    first.kill()  # SIGKILL: no cleanup at all; the kernel drops the lock with the process
    first.communicate()
    assert lock_holder(str(run_dir)) is None
    resumed = resume(run_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert without_timing(rows(run_dir)) == without_timing(rows(seed1_run))

