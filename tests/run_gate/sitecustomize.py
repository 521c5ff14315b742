"""A test hook for ``run_re2.py`` processes, idle unless ERL_RE2_TEST_GATE is set: it holds the run at one point
of its generation loop until the run is told to stop (SIGTERM / SIGINT) or is killed, so that a test signals a
run at a known point instead of after a guessed delay. Tests put this folder on PYTHONPATH, and Python imports
``sitecustomize`` at start-up; the run's own code is unchanged.

ERL_RE2_TEST_GATE (one gate per process, never again for the same run once its file exists):
  ``start:G``     before generation G begins (G - 1 rows logged);
  ``iterations``  halfway through the learner iterations of the run's first generation with two or more.
When the run is held there, ``<logdir>/gate_seed<seed>.json`` appears (written atomically) with the generation,
the learner iterations done and their number in that generation. A stop signal opens the gate and the run
goes on exactly as it would have, stopping at its next check; without one the gate opens after 10 minutes.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time

HOLD_S = 600  # only a cap, for a test that failed before signalling


def _install(spec: str, root: str) -> None:
    sys.path.insert(0, root)
    from core.agent import Agent

    train = Agent.train
    fired = False

    def hold(agent: Agent, where: dict) -> None:
        """Write the gate file, then wait for SIGTERM / SIGINT (whose handlers, the run's, still run)."""
        nonlocal fired
        fired = True
        path = os.path.join(agent.args.logdir, f"gate_seed{agent.args.seed}.json")
        if os.path.exists(path):  # held once already (this is a resumed or requeued attempt)
            return
        signalled: list[int] = []
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def chained(signum, frame):
            signalled.append(signum)
            if callable(previous[signum]):  # the run's StopFlag, installed before any generation
                previous[signum](signum, frame)

        for sig in previous:
            signal.signal(sig, chained)
        try:
            with open(path + ".tmp", "w") as f:
                json.dump(where, f)
            os.replace(path + ".tmp", path)
            deadline = time.monotonic() + HOLD_S
            while not signalled and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def gated_train(self: Agent, pause=None):
        if fired:
            return train(self, pause)
        if spec.startswith("start:"):
            if self._pending is None and self.generation == int(spec.split(":")[1]) - 1:
                hold(self, {"generation": self.generation + 1})
            return train(self, pause)
        calls = 0

        def halfway(real=pause):
            nonlocal calls
            calls += 1
            gen = self._pending
            done = gen["iterations_done"] + calls - 1
            if not fired and gen["iterations"] >= 2 and done == gen["iterations"] // 2:
                hold(self, {"generation": self.generation, "done": done, "iterations": gen["iterations"]})
            return real is not None and real()

        return train(self, halfway)

    Agent.train = gated_train


def _gate() -> None:
    spec = os.environ.get("ERL_RE2_TEST_GATE")
    if not spec or os.path.basename(sys.argv[0] if sys.argv else "") != "run_re2.py":
        return
    root = os.path.dirname(os.path.abspath(sys.argv[0]))
    _install(spec, root)


_gate()
