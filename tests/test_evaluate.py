"""core.evaluate on a tiny run's checkpoint, MP4s read back, bad run directories and flags, and
``run_re2.py -capture_video`` leaving training untouched."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from test_run import TINY, rows, run, without_timing

from core import evaluate
from core.checkpoint import load_checkpoint, save_checkpoint
from core.evaluate import RunError, choose_actors
from core.video import HEIGHT, WIDTH, renderer_problem, video_info

# Short episodes keep the videos (one frame per step) cheap to render on a CPU.
SMALL = [*TINY, "-num_frames", "600", "-init_steps", "300", "-max_episode_steps", "20", "-checkpoint_every", "300",
         "-theta", "1", "-seed", "3"]
ROW = re.compile(r"^\| (?P<label>[^|]+?) \| (?P<mean>-?[\d.]+) ± (?P<std>[\d.]+) \| (?P<length>[\d.]+) \|$")


def need_renderer() -> None:
    """Skip where MuJoCo cannot render offscreen, except in CI (ERL_RE2_REQUIRE_RENDER=1) where it must."""
    problem = renderer_problem("Hopper-v4")
    if problem:
        if os.environ.get("ERL_RE2_REQUIRE_RENDER") == "1":
            pytest.fail(f"ERL_RE2_REQUIRE_RENDER=1 but no renderer: {problem}")
        pytest.skip(f"no offscreen renderer here: {problem}")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    proc, run_dir = run(SMALL, tmp_path_factory.mktemp("small"))
    assert proc.returncode == 0, proc.stderr
    return run_dir


def table(out: str) -> dict[str, tuple[float, float, float]]:
    found = {m["label"]: (float(m["mean"]), float(m["std"]), float(m["length"])) for m in map(ROW.match, out.splitlines()) if m}
    assert found, out
    return found


def plain_episode_return(learner, head: int, reset_seed: int) -> tuple[float, int]:
    """One episode stepped by hand (no lockstep pool), actions rescaled to the bounds here."""
    env = gym.make("Hopper-v4", max_episode_steps=20)
    low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    obs, _ = env.reset(seed=reset_seed)
    total, steps, done = 0.0, 0, False
    while not done:
        a = learner.act(obs[None], np.array([head]))[0]
        obs, r, term, trunc, _ = env.step(low + (a + 1.0) * 0.5 * (high - low))
        total, steps, done = total + r, steps + 1, term or trunc
    env.close()
    return total, steps


def test_table_lists_every_actor_and_matches_plain_episodes(small_run, capsys):
    assert evaluate.main([str(small_run), "-episodes", "3", "-seed", "7"]) == 0
    out = capsys.readouterr().out
    got = table(out)
    state = load_checkpoint(str(small_run))
    champ = state["champion"]["member"]
    assert list(got) == [f"member{i}" + (" (champion)" if i == champ else "") for i in range(5)] + ["rl"]
    assert f"checkpoint at {state['counters']['frames']:,} frames" in out and "resets from seed 7" in out
    # The champion record is the last generation's best fitness (-theta 1: an MC fitness every generation).
    last = rows(small_run)[-1]
    assert state["champion"]["generation"] == int(last["generation"]) and state["champion"]["fitness_kind"] == "mc"
    assert state["champion"]["fitness"] == pytest.approx(float(last["fitness_max"]))
    # The same numbers from episodes stepped one by one with the same reset seeds.
    config = json.loads((small_run / "config.json").read_text())
    settings = Namespace(**config["settings"])
    learner = evaluate.build_learner(settings, state, 11, 3)
    seeds = np.random.default_rng(7).integers(0, 2**31 - 1, size=3).tolist()
    for label, head in (("rl", 5), (f"member{champ} (champion)", champ)):
        plain = [plain_episode_return(learner, head, s) for s in seeds]
        returns, lengths = np.array([p[0] for p in plain]), np.array([p[1] for p in plain])
        assert got[label] == (round(returns.mean(), 1), round(returns.std(), 1), round(lengths.mean(), 1))
        assert 1 <= lengths.max() <= 20


def test_champion_only_and_seed_changes_resets(small_run, capsys, monkeypatch):
    """-actor champion plays the champion alone, and -seed S draws the episodes' resets from S: each seed's table
    is that of the champion's episodes stepped by hand from that seed's resets. (Whether two seeds' returns
    differ once rounded is the policy's affair, so the two tables are not compared with each other.)"""
    import core.rollout

    resets = []
    run_episodes = core.rollout.run_episodes
    monkeypatch.setattr(core.rollout, "run_episodes",
                        lambda pool, policy, seeds, **kw: (resets.append(list(seeds)), run_episodes(pool, policy, seeds, **kw))[1])
    state = load_checkpoint(str(small_run))
    learner = evaluate.build_learner(Namespace(**json.loads((small_run / "config.json").read_text())["settings"]), state, 11, 3)
    for seed in (7, 8):
        assert evaluate.main([str(small_run), "-episodes", "2", "-actor", "champion", "-seed", str(seed)]) == 0
        got = table(capsys.readouterr().out)
        assert list(got) == ["champion"]
        seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=2).tolist()
        assert resets[-1] == seeds
        plain = [plain_episode_return(learner, state["champion"]["member"], s) for s in seeds]
        returns, lengths = np.array([p[0] for p in plain]), np.array([p[1] for p in plain])
        assert got["champion"] == (round(returns.mean(), 1), round(returns.std(), 1), round(lengths.mean(), 1))
    assert resets[0] != resets[1]


def test_video_is_an_mp4_with_one_frame_per_step(small_run, tmp_path, capsys):
    need_renderer()
    out_dir = tmp_path / "videos"
    assert evaluate.main([str(small_run), "-episodes", "2", "-actor", "rl", "-video", str(out_dir)]) == 0
    out = capsys.readouterr().out
    frames = load_checkpoint(str(small_run))["counters"]["frames"]
    path = out_dir / f"{frames}_rl.mp4"
    assert path.read_bytes()[4:8] == b"ftyp"  # an ISO base-media (MP4) file
    n, width, height, codec = video_info(str(path))
    # One frame after the reset and one per step of the first episode.
    learner = evaluate.build_learner(Namespace(**json.loads((small_run / "config.json").read_text())["settings"]),
                                     load_checkpoint(str(small_run)), 11, 3)
    seed = json.loads((small_run / "config.json").read_text())["seed"] + 100
    _, steps = plain_episode_return(learner, 5, np.random.default_rng(seed).integers(0, 2**31 - 1, size=2).tolist()[0])
    assert (n, width, height, codec) == (steps + 1, WIDTH, HEIGHT, "h264")
    assert f"video: {path} ({steps + 1} frames)" in out


def _copy_config(src: Path, dst: Path) -> None:
    dst.mkdir()
    shutil.copy(src / "config.json", dst / "config.json")


@pytest.mark.parametrize("case", ["missing_dir", "no_config", "bad_config", "no_checkpoint", "truncated", "foreign", "other_run",
                                  "altered"])
def test_bad_run_directory_is_one_line_exit_2(case, small_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    if case == "no_config":
        run_dir.mkdir()
        shutil.copy(small_run / "checkpoint.pt", run_dir)
    elif case == "bad_config":
        run_dir.mkdir()
        (run_dir / "config.json").write_text('{"settings": {"lr": 1}}')
    elif case != "missing_dir":
        _copy_config(small_run, run_dir)
    data = (small_run / "checkpoint.pt").read_bytes()
    if case == "truncated":
        (run_dir / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    elif case == "foreign":
        torch.save({"model": torch.zeros(3)}, run_dir / "checkpoint.pt")
    elif case == "other_run":
        save_checkpoint(str(run_dir), {**load_checkpoint(str(small_run)), "run_name": "someone-else"})
    elif case == "altered":
        altered = bytearray(data)
        altered[len(data) // 2] ^= 0xFF
        (run_dir / "checkpoint.pt").write_bytes(bytes(altered))
    assert evaluate.main([str(run_dir)]) == 2
    err = capsys.readouterr().err
    expected = {"missing_dir": "no such directory", "no_config": "no readable config.json", "bad_config": "no readable config.json",
                "no_checkpoint": "no checkpoint at", "truncated": "not a readable checkpoint",
                "foreign": "not an ERL-Re2 checkpoint", "other_run": "belongs to run 'someone-else'",
                "altered": "is corrupt: its content does not match its SHA-256 checksum"}[case]
    assert err.count("\n") == 1 and err.startswith("python -m core.evaluate: error: RUN_DIR") and expected in err, err


@pytest.mark.parametrize(("argv", "needle"), [
    (["-episodes", "0"], "-episodes must be a positive integer (got 0)"),
    (["-actor", "best"], "argument -actor: invalid choice: 'best' (choose from 'champion', 'rl', 'all')"),
    (["-seed", "-1"], "-seed must be an integer >= 0"),
    (["-video", "/proc/forbidden/videos"], "-video: cannot create or write to"),
    (["-episodes", "ten"], "argument -episodes: invalid int value"),
])
def test_bad_flags_are_one_line_exit_2(argv, needle, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(evaluate.main([str(tmp_path), *argv]))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err


def test_video_without_renderer_is_one_line_exit_2(small_run, tmp_path):
    env = {**os.environ, "MUJOCO_GL": "egl", "__EGL_VENDOR_LIBRARY_FILENAMES": str(tmp_path / "none.json")}
    proc = subprocess.run([sys.executable, "-m", "core.evaluate", str(small_run), "-video", str(tmp_path / "v")],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("python -m core.evaluate: error: -video: no usable MuJoCo renderer")


def test_actor_choice_follows_the_variant():
    full = Namespace(pop_size=3, EA=True, RL=True)
    assert choose_actors("all", full, {"champion": {"member": 1}}) == [("member0", 0), ("member1 (champion)", 1), ("member2", 2), ("rl", 3)]
    assert choose_actors("champion", full, {"champion": {"member": 2}}) == [("champion", 2)]
    assert choose_actors("all", Namespace(pop_size=3, EA=False, RL=True), {"champion": None}) == [("rl", 3)]
    for which, settings, state, needle in [
        ("champion", Namespace(pop_size=3, EA=False, RL=True), {"champion": None}, "RL only"),
        ("rl", Namespace(pop_size=3, EA=True, RL=False), {"champion": {"member": 0}}, "EA only"),
        ("champion", full, {"champion": None}, "no champion yet"),
        ("champion", full, {}, "predates the champion record"),
    ]:
        with pytest.raises(RunError, match=needle):
            choose_actors(which, settings, state)


def decoded(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def pixel_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference per pixel and channel (0-255) over the frames both clips have."""
    n = min(len(a), len(b))
    return float(np.abs(a[:n].astype(int) - b[:n].astype(int)).mean())


def checkpoint_frames(table_rows: list[dict], every: int) -> list[tuple[int, bool]]:
    """(frames, champion exists) at each checkpoint run_re2.py writes, the final one included."""
    out, next_at, champion = [], every, False
    for r in table_rows:
        champion |= r["fitness_kind"] != "none"
        frames = int(r["frames"])
        if frames >= next_at:
            out.append((frames, champion))
            next_at = (frames // every + 1) * every
    if not out or out[-1][0] != frames:
        out.append((frames, champion))
    return out


def test_capture_video_changes_no_training_row(small_run, tmp_path):
    need_renderer()
    proc, run_dir = run([*SMALL, "-capture_video"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert without_timing(rows(run_dir)) == without_timing(rows(small_run))
    expected = {f"{f}_{actor}.mp4" for f, champ in checkpoint_frames(rows(run_dir), 300) for actor in ("rl", "champion")[: 1 + champ]}
    assert {p.name for p in (run_dir / "videos").iterdir()} == expected
    last = max(expected, key=lambda name: int(name.split("_")[0]))
    n, width, height, _ = video_info(str(run_dir / "videos" / last))
    assert 2 <= n <= 21 and (width, height) == (WIDTH, HEIGHT)
    # core.evaluate's first episode (default -seed) replays the episode recorded at the last checkpoint.
    actor = last.split("_")[1].removesuffix(".mp4")
    assert evaluate.main([str(run_dir), "-episodes", "1", "-actor", actor, "-video", str(tmp_path / "replay")]) == 0
    recorded, replayed = decoded(run_dir / "videos" / last), decoded(tmp_path / "replay" / last)
    assert recorded.shape == replayed.shape  # the same episode length
    # Close pictures, not equal ones: software rendering in another process and lossy encoding (x264 adapts each
    # frame to the rest of the clip) leave the same episode 0.0 to 0.7 levels per pixel apart on average over
    # the clip (18 replays measured; single frames up to 2.2). The same actor's episode from another reset is
    # 2.6 to 4.2 apart (17 resets measured; the tracking camera starts a hair elsewhere over the checkered
    # floor): the bound of 1.5 tells the two apart, and that other episode shows it does.
    other_seed = json.loads((run_dir / "config.json").read_text())["seed"] + 101  # core.evaluate's default + 1
    assert evaluate.main([str(run_dir), "-episodes", "1", "-actor", actor, "-seed", str(other_seed),
                          "-video", str(tmp_path / "other")]) == 0
    other = decoded(tmp_path / "other" / last)
    same, different = pixel_difference(recorded, replayed), pixel_difference(recorded, other)
    print(f"\nmean pixel difference to the recording: its replay {same:.2f}, another reset's episode {different:.2f}")
    assert same < 1.5 < different, (same, different)
    assert json.loads((run_dir / "config.json").read_text())["settings"]["capture_video"] is True


def test_no_renderer_warns_once_and_trains_on(tmp_path):
    # Point libglvnd at no EGL driver: what a machine without Mesa's EGL packages looks like.
    env = {**os.environ, "MUJOCO_GL": "egl", "__EGL_VENDOR_LIBRARY_FILENAMES": str(tmp_path / "none.json")}
    argv = [*SMALL, "-num_frames", "150", "-init_steps", "100", "-checkpoint_every", "50", "-capture_video"]
    proc = subprocess.run([sys.executable, "run_re2.py", *argv, "-logdir", str(tmp_path / "logs")],
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("warning: -capture_video: no usable MuJoCo renderer") == 1, proc.stderr
    run_dir = next((tmp_path / "logs").iterdir())
    assert not (run_dir / "videos").exists()
    assert int(rows(run_dir)[-1]["frames"]) >= 150 and (run_dir / "checkpoint.pt").is_file()


def test_champion_member_holds_the_head_with_the_best_fitness(tmp_path, one_torch_thread):
    """After the SSNE epoch and the RL sync, the recorded member still holds the pre-epoch best head."""
    from core.agent import Agent
    from parameters import parse_args

    args, _ = parse_args([*SMALL, "-num_frames", "400", "-logdir", str(tmp_path)])
    agent = Agent(args, torch.device("cpu"))
    seen = []
    real_epoch = agent.ssne.epoch

    def spying_epoch(weight, bias, fitness):
        seen.append((weight.clone(), bias.clone(), np.asarray(fitness, dtype=float).copy()))
        return real_epoch(weight, bias, fitness)

    agent.ssne.epoch = spying_epoch
    checked = 0
    try:
        for _ in range(1000):  # only a cap: the warm-up's number of generations depends on the trajectory
            agent.train()
            if agent.champion is None:
                continue
            w, b, fitness = seen[-1]
            best = int(np.flatnonzero(fitness == fitness.max())[-1])  # SSNE ranks ties by the higher index
            member = agent.champion["member"]
            assert agent.champion["fitness"] == fitness.max() and agent.champion["generation"] == agent.generation
            assert torch.equal(agent.learner.pop_weight[member], w[best]) and torch.equal(agent.learner.pop_bias[member], b[best])
            checked += 1
            if checked == 3:
                break
    finally:
        agent.close()
    assert checked == 3


def test_evaluate_ignores_a_half_written_checkpoint(small_run, tmp_path, capsys):
    """A running run may be writing checkpoint.pt.tmp; evaluate reads only the complete checkpoint.pt."""
    run_dir = tmp_path / "running"
    shutil.copytree(small_run, run_dir)
    (run_dir / "checkpoint.pt.tmp").write_bytes(b"half a checkpoint")
    assert evaluate.main([str(run_dir), "-episodes", "1", "-actor", "rl"]) == 0
    assert list(table(capsys.readouterr().out)) == ["rl"]


def test_video_logged_to_wandb_at_its_frame_count(tmp_path):
    from core.logger import RunLogger
    from core.video import Mp4Writer

    clip = tmp_path / "100_rl.mp4"
    writer = Mp4Writer(str(clip), fps=20)
    for k in range(5):
        writer.write(np.full((HEIGHT, WIDTH, 3), 40 * k, dtype=np.uint8))
    assert writer.close() == 5 and video_info(str(clip))[:3] == (5, WIDTH, HEIGHT)
    config = {"run_name": "video-test", "wandb_run_id": "videotest01", "task": "Hopper", "variant": "ERL-Re2"}
    logger = RunLogger(str(tmp_path), config, "offline", "ERL-Re2-tests", 1000)
    # As in run_re2.py: the generation's row at frame 100, its checkpoint, then the checkpoint's video.
    logger.log({"frames": 100, "generation": 1, "fps": 50.0, "best_reward": 1.0, "champion_score": None, "rl_score": 1.0,
                "fitness_kind": "none"})
    logger.log_video("rl", str(clip), 100)
    logger.close()
    logged = list(tmp_path.glob("wandb/offline-run-*/files/media/videos/video/rl_100_*.mp4"))
    assert len(logged) == 1 and logged[0].read_bytes() == clip.read_bytes()
