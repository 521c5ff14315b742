"""Run ERL-Re²: ``python run_re2.py -env HalfCheetah-v4 -seed 1`` (``-h`` lists every flag).

Start-or-resume: the same command again resumes the run from its checkpoint, or skips it when it has
finished; ``python run_re2.py -resume <run dir>`` continues a given run. The lifecycle (start-or-resume,
signals, checkpoints) is in ``core/lifecycle.py``, the run directory's name and lock in ``core/run_dir.py``;
the algorithm in ``core/agent.py``.
"""
from __future__ import annotations

import sys

from core.lifecycle import run_main


def main(argv: list[str] | None = None) -> int:
    return run_main(argv)


if __name__ == "__main__":
    sys.exit(main())
