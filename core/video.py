"""Offscreen MuJoCo rendering and MP4 files, shared by ``core.evaluate`` and ``run_re2.py -capture_video``.

Rendering needs an OpenGL context without a display: EGL through Mesa's software rasteriser
(llvmpipe) works on a CPU-only machine (Debian: libegl1 libopengl0 libegl-mesa0 libgl1-mesa-dri).
MP4s are written with PyAV, whose wheels carry FFmpeg and libx264, so no system ffmpeg is needed.
Frames are encoded as they are rendered, so a 1000-step episode never sits in memory.
"""
from __future__ import annotations

import gc
import os
import sys
import warnings
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

from core.rollout import EnvPool, make_env

if TYPE_CHECKING:
    from core.agent import Agent

GL_BACKEND = "egl"  # faster than OSMesa here (llvmpipe: ~60 vs ~105 ms per 320x240 frame)
WIDTH, HEIGHT = 320, 240  # both multiples of 16, as H.264 macroblocks want
RENDER_PACKAGES = "libegl1 libopengl0 libegl-mesa0 libgl1-mesa-dri"


def evaluation_reset_seeds(seed: int, n: int) -> list[int]:
    """Reset seeds of ``n`` evaluation episodes (core.evaluate); the first is the one a checkpoint
    video uses, so ``core.evaluate RUN_DIR -video`` replays the episode ``-capture_video`` recorded."""
    return np.random.default_rng(seed).integers(0, 2**31 - 1, size=n).tolist()


def ensure_gl_backend() -> str:
    """Pick EGL unless the user chose a backend; MuJoCo reads MUJOCO_GL when it first renders."""
    os.environ.setdefault("MUJOCO_GL", GL_BACKEND)
    return os.environ["MUJOCO_GL"]


class Mp4Writer:
    """H.264 MP4 (yuv420p, the format every player reads) written frame by frame."""

    def __init__(self, path: str, fps: float):
        import av  # only runs that render pay for the import

        self.path, self.frames = path, 0
        self._container = av.open(path, "w")
        self._stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        self._stream.pix_fmt = "yuv420p"
        self._frame_type = av.VideoFrame

    def write(self, rgb: np.ndarray) -> None:
        if self.frames == 0:  # the size is known from the first frame
            self._stream.height, self._stream.width = rgb.shape[:2]
        self._container.mux(self._stream.encode(self._frame_type.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")))
        self.frames += 1

    def close(self) -> int:
        """Flush the encoder and finish the file; returns the number of frames written."""
        if self._container is not None:
            if self.frames:
                self._container.mux(self._stream.encode())
            self._container.close()
            self._container = None
        return self.frames


class RecordEpisode(gym.Wrapper):
    """Renders the frame after ``reset`` and after every ``step`` into an MP4 (length + 1 frames)."""

    def __init__(self, env: gym.Env, path: str):
        super().__init__(env)
        fps = env.metadata.get("render_fps") or 30  # MuJoCo tasks: real time (1 / dt)
        self.writer = Mp4Writer(path, fps)

    def reset(self, **kwargs) -> tuple:
        out = self.env.reset(**kwargs)
        self.writer.write(self.env.render())
        return out

    def step(self, action: np.ndarray) -> tuple:
        out = self.env.step(action)
        self.writer.write(self.env.render())
        return out

    def close(self) -> None:
        self.writer.close()
        super().close()


def render_env(env_id: str, max_episode_steps: int | None = None) -> gym.Env:
    ensure_gl_backend()
    # The model's tracking camera follows the agent (all six paper tasks define "track"; a model without
    # one gets the free camera); gymnasium's default free camera stays put while the agent runs out of view.
    return make_env(env_id, max_episode_steps, render_mode="rgb_array", width=WIDTH, height=HEIGHT, camera_name="track")


def recording_pool(env_id: str, n: int, max_episode_steps: int | None, videos: dict[int, str]) -> EnvPool:
    """An EnvPool of ``n`` instances whose instance i records its episode to ``videos[i]``."""
    pool = EnvPool(env_id, n, max_episode_steps)
    for i, path in videos.items():
        pool.envs[i].close()
        pool.envs[i] = RecordEpisode(render_env(env_id, max_episode_steps), path)
    return pool


def renderer_problem(env_id: str) -> str | None:
    """``None`` when MuJoCo can render ``env_id`` offscreen and PyAV is installed, else why not (one line)."""
    hook = sys.unraisablehook
    # A viewer whose GL context failed complains again from its __del__; the caller reports once.
    sys.unraisablehook = lambda _: None
    try:
        import av  # noqa: F401

        with warnings.catch_warnings():  # the probe's only output is its answer (e.g. no v4 deprecation notice)
            warnings.simplefilter("ignore")
            env = render_env(env_id)
            try:
                env.reset(seed=0)
                frame = env.render()
            finally:
                env.close()
        if frame is None or frame.shape[:2] != (HEIGHT, WIDTH):
            return f"rendering gave no {WIDTH}x{HEIGHT} frame"
        return None
    except Exception as exc:  # noqa: BLE001 (any failure means no videos, never a failed run)
        return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    finally:
        gc.collect()
        sys.unraisablehook = hook


def no_renderer_message(problem: str) -> str:
    return (f"no usable MuJoCo renderer (MUJOCO_GL={os.environ.get('MUJOCO_GL')}: {problem}); "
            f"install the Debian packages {RENDER_PACKAGES} (EGL) or set MUJOCO_GL to a backend that works")


def video_info(path: str) -> tuple[int, int, int, str]:
    """(frames decoded, width, height, codec) of a video file, read back with PyAV."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, stream.codec_context.width, stream.codec_context.height, stream.codec_context.name


class CheckpointVideos:
    """``run_re2.py -capture_video``: at each checkpoint, one noise-free episode of the champion and
    of the RL agent to ``<run_dir>/videos/<frames>_<actor>.mp4`` and to wandb.

    Training never sees this: the episodes run on their own environment instances, reset with a
    fixed seed (that of core.evaluate's first episode, the same at every checkpoint, so videos are comparable) and draw
    from none of the run's generators. Any failure is one warning, then the run goes on without
    videos.
    """

    def __init__(self, run_dir: str, env_id: str, max_episode_steps: int | None, seed: int,
                 log_video: Callable[[str, str, int], None]):
        self.dir = os.path.join(run_dir, "videos")
        self.env_id, self.max_episode_steps = env_id, max_episode_steps
        self.reset_seed = evaluation_reset_seeds(seed + 100, 1)[0]  # core.evaluate's default -seed is seed + 100
        self.log_video = log_video
        self.last_frames: int | None = None
        problem = renderer_problem(env_id)
        self.enabled = problem is None
        if problem:
            self._warn(no_renderer_message(problem))

    def _warn(self, message: str) -> None:
        self.enabled = False
        sys.stderr.write(f"run_re2.py: warning: -capture_video: {message}; the run continues without videos\n")
        sys.stderr.flush()

    def capture(self, agent: Agent) -> list[str]:
        """Record the champion (if evolution has produced one) and the RL agent (if RL is on)."""
        if not self.enabled or agent.frames == self.last_frames:  # the final checkpoint can repeat the last one
            return []
        self.last_frames = agent.frames
        from core.rollout import run_episodes

        actors = ([("champion", agent.champion["member"])] if agent.champion else []) + \
                 ([("rl", agent.learner.rl_index)] if agent.args.RL else [])
        if not actors:
            return []
        paths = [os.path.join(self.dir, f"{agent.frames}_{name}.mp4") for name, _ in actors]
        try:
            os.makedirs(self.dir, exist_ok=True)
            pool = recording_pool(self.env_id, len(actors), self.max_episode_steps, dict(enumerate(paths)))
            try:
                run_episodes(pool, agent.learner.policy(np.array([h for _, h in actors])), [self.reset_seed] * len(actors))
            finally:
                pool.close()
            for (name, _), path in zip(actors, paths):
                self.log_video(name, path, agent.frames)
        except Exception as exc:  # noqa: BLE001 (a video must never end a run)
            self._warn(f"recording at frame {agent.frames} failed ({type(exc).__name__}: {' '.join(str(exc).split())})")
            return []
        return paths
