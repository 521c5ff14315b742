"""What a newcomer sees first: the run's header, no wall of repeated warnings, and an ETA that is
the rate past the warm-up (a warm-up generation, with no learning, runs many times faster)."""
from __future__ import annotations

from collections import Counter

from test_run import TINY, rows, run

from core.logger import RunLogger
from core.rollout import SETTOTALMASS


def eta_text(seconds: float) -> str:
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def test_first_screen_has_no_repeated_warning_and_a_true_eta(tmp_path):
    args = [*TINY, "-env", "HalfCheetah-v4", "-seed", "1"]  # a run builds 16 environment instances
    proc, run_dir = run(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    screen = proc.stderr.splitlines() + proc.stdout.splitlines()
    said = Counter(line for line in screen if line.strip() and not line.startswith("gen "))
    assert not [line for line, n in said.items() if n > 1], proc.stderr
    assert sum(SETTOTALMASS in line or "settotalmass" in line for line in screen) <= 1, proc.stderr
    assert "out of date" not in proc.stderr  # gymnasium's v4 notice, replaced by the header's one line
    header = proc.stdout.splitlines()[:2]
    assert header[0].startswith("ERL-Re2 | ERL-Re2 | HalfCheetah-v4 | seed 1") and "closest to the paper's v2" in header[1]

    # Each progress line's ETA, recomputed from the run's own rows: "after warm-up" while the RL agent
    # is still acting at random, then (frames left) / (rate since the warm-up's last row).
    table = rows(run_dir)
    printed = [line.rsplit("| ETA ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("gen ")]
    assert len(printed) == len(table)
    init_steps, budget = int(args[args.index("-init_steps") + 1]), int(args[args.index("-num_frames") + 1])
    mark, warm, learning = (0, 0.0), 0, 0
    for row, eta in zip(table, printed):
        frames, seconds = int(row["frames"]), float(row["time_s"])
        if int(row["rl_frames"]) < init_steps:
            assert eta == "after warm-up"
            mark, warm = (frames, seconds), warm + 1
        else:
            left = max(budget - frames, 0) * (seconds - mark[1]) / (frames - mark[0])
            assert eta == eta_text(left), (row, eta)
            learning += 1
    assert warm and learning  # both kinds of line were seen


def logged(logger: RunLogger, table: list[tuple[int, int, float]]) -> list[str]:
    return [logger.update_eta({"frames": f, "rl_frames": rl, "time_s": t}) for f, rl, t in table]


def test_eta_is_the_rate_past_the_warm_up(tmp_path):
    # 10,000 warm-up frames in 10 s, then 2,000 frames a minute: 988,000 frames left take 494 minutes.
    # The whole run's rate (12,000 frames in 70 s) would say 1 h 36 min: off by five times.
    logger = RunLogger(str(tmp_path), {}, "disabled", "", num_frames=1_000_000, warmup_rl_frames=10_000)
    etas = logged(logger, [(5_000, 5_000, 5.0), (10_000, 9_999, 10.0), (12_000, 10_999, 70.0), (14_000, 11_999, 130.0)])
    assert etas == ["after warm-up", "after warm-up", "8h14m", "8h13m"]
    assert eta_text((1_000_000 - 12_000) / (12_000 / 70.0)) == "1h36m"
    logger.close()


def test_eta_after_a_resume_is_this_process_s_rate(tmp_path):
    # Taken up at 500,000 frames and 3 h of wall time; 4,000 frames in the next 100 s: 496,000 left take 3 h 26 min.
    logger = RunLogger(str(tmp_path), {}, "disabled", "", num_frames=1_000_000, warmup_rl_frames=10_000,
                       start=(500_000, 10_800.0))
    assert logged(logger, [(504_000, 100_000, 10_900.0)]) == ["3h26m"]
    logger.close()
    # With no warm-up (the EA-only ablation) the rate runs from the start.
    # Taken up inside a generation: its first row's frames were partly collected before, so that row only
    # starts the rate.
    (tmp_path / "mid").mkdir()
    mid = RunLogger(str(tmp_path / "mid"), {}, "disabled", "", num_frames=1_000_000, warmup_rl_frames=10_000, start=None)
    assert logged(mid, [(504_000, 100_000, 10_900.0), (508_000, 101_000, 11_000.0)]) == ["-", "3h25m"]
    mid.close()
    (tmp_path / "ea").mkdir()
    ea_only = RunLogger(str(tmp_path / "ea"), {}, "disabled", "", num_frames=100_000)
    assert logged(ea_only, [(1_000, 0, 2.0)]) == ["0h03m"]
    ea_only.close()


def test_mujoco_warnings_other_than_the_known_one_stay_visible_and_none_can_kill_the_run(capsys, monkeypatch):
    import sys

    from core import rollout

    rollout._mujoco_warning("Nan, Inf or huge value in QVEL at DOF 0. The simulation is unstable.")
    assert capsys.readouterr().err == "WARNING: Nan, Inf or huge value in QVEL at DOF 0. The simulation is unstable.\n\n"

    class FullDisk:
        def write(self, _):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(sys, "stderr", FullDisk())
    rollout._mujoco_warning("Nan, Inf or huge value in QVEL at DOF 0.")  # MuJoCo's bindings would abort on a raise
