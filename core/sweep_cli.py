"""The sweep's command line, ``bash run.sh`` (= ``python -m core.sweep``): tasks, -j, -n, --seeds,
--logdir, --status, --slurm with its sbatch options, and the run flags after ``--``; bad input is one
line and exit 2 before anything runs.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import sys

from core.lifecycle import EXIT_BAD_INPUT
from core.lifecycle import main as lifecycle_main
from core.slurm_options import MIN_TIME_MIN, SBATCH_OPTIONS, SET_BY_SWEEP, SIGNAL_LEAD_S, SweepError
from core.sweep import SEEDS, TASKS, SubmitError, Sweep


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise SweepError(message)


class _SbatchOption(argparse.Action):
    """An sbatch option, kept under its name in ``namespace.sbatch``; given twice is an error."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if self.dest in namespace.sbatch:
            raise SweepError(f"--{self.dest} given twice (got {namespace.sbatch[self.dest]} and {values})")
        namespace.sbatch[self.dest] = values


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bash run.sh", allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
                description="The paper's sweep: tasks x seeds, every run start-or-resume (the same sweep again resumes "
                            "the unfinished runs and skips the finished ones). Here: at most -j runs at once, one log per "
                            "run in LOGDIR/jobs/. With --slurm: one Slurm job array through submitit; at the time limit "
                            "or preemption a run checkpoints and its task is requeued.",
                epilog="Everything after -- goes to every run (python run_re2.py -h lists the flags).\n"
                       "Environment: SEEDS and LOGDIR (defaults of --seeds and --logdir), PYTHON (run.sh's interpreter).\n\n"
                       "examples:\n"
                       "  bash run.sh                                      # six tasks x seeds 1-5 here\n"
                       "  SEEDS=\"1 2\" bash run.sh -j 2 Hopper-v4 -- -num_frames 100000 -RL\n"
                       "  bash run.sh -n                                   # print the commands, run nothing\n"
                       "  bash run.sh --slurm --partition=cpu --time=1-00:00:00 -j 10\n"
                       "  bash run.sh --slurm -n Hopper-v4                 # print the job script, submit nothing\n"
                       "  bash run.sh --status [LOGDIR]                    # one line per run")
    p.add_argument("tasks", nargs="*", metavar="TASK", help=f"gymnasium task ids (default: {' '.join(TASKS)})")
    p.add_argument("-j", dest="parallel", metavar="N", help="runs at once (default: one per core here, all on Slurm)")
    p.add_argument("-n", "--dry-run", action="store_true", help="print what would run or be submitted; do nothing")
    p.add_argument("--seeds", default=os.environ.get("SEEDS", " ".join(map(str, SEEDS))),
                   help="seeds separated by spaces (default: $SEEDS or 1 2 3 4 5)")
    p.add_argument("--logdir", default=os.environ.get("LOGDIR", "./logs"), help="log folder (default: $LOGDIR or ./logs)")
    p.add_argument("--status", action="store_true", help="--status [LOGDIR], alone: one line per run under LOGDIR")
    p.add_argument("--slurm", action="store_true", help="submit one Slurm job array instead of running here")
    group = p.add_argument_group("sbatch options, with --slurm (--opt=value or --opt value; --cpus-per-task is also "
                                 "each run's -threads, default 1)")
    explained = {"time": f"the job's time limit (default: the partition's, read with sinfo; at least {MIN_TIME_MIN} "
                         f"minutes): the run checkpoints {SIGNAL_LEAD_S} s before it and its task is requeued"}
    for name in SBATCH_OPTIONS:
        group.add_argument(f"--{name}", dest=name, action=_SbatchOption, metavar="V", default=argparse.SUPPRESS,
                           help=explained.get(name))
    return p


def parse_command_line(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """``[TASK ...] [options] [-- RUN FLAGS]`` -> the options (``sbatch``: the sbatch options given) and the run flags."""
    head, flags = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args, unknown = build_parser().parse_known_intermixed_args(head, argparse.Namespace(sbatch={}))
    for arg in unknown:
        name = arg.split("=", 1)[0]
        if name.lstrip("-") in SET_BY_SWEEP:
            raise SweepError(f"{name} is set by the sweep (one array task per run, requeue, signal, logs); "
                             "cap the runs at once with -j N")
        raise SweepError(f"unknown option {name} (accepted: TASK ..., -j N, -n, --seeds, --logdir, --status [LOGDIR], "
                         f"--slurm, -h, -- RUN FLAGS, and with --slurm: {' '.join('--' + o for o in SBATCH_OPTIONS)})")
    if args.status:
        raise SweepError("--status must come first and alone: bash run.sh --status [LOGDIR]")
    if args.parallel is not None:
        if not re.fullmatch(r"[1-9][0-9]*", args.parallel):
            raise SweepError(f"-j must be a positive integer (got {args.parallel})")
        args.parallel = int(args.parallel)
    if args.sbatch and not args.slurm:
        raise SweepError(f"--{next(iter(args.sbatch))} is an sbatch option: it needs --slurm")
    if not args.seeds.split() or not all(re.fullmatch(r"[0-9]+", s) for s in args.seeds.split()):
        raise SweepError(f"SEEDS / --seeds must be non-negative integers separated by spaces (got '{args.seeds}')")
    args.seeds = [int(s) for s in args.seeds.split()]
    return args, flags


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    options = argv[:argv.index("--")] if "--" in argv else argv
    try:
        if argv[:1] == ["--status"]:
            if len(argv) > 2:
                raise SweepError(f"--status takes one optional argument, the log folder (got: {' '.join(argv[1:])})")
            return lifecycle_main(["status", argv[1] if len(argv) == 2 else os.environ.get("LOGDIR", "./logs")])
        if "-h" in options or "--help" in options:
            build_parser().print_help()
            return 0
        args, flags = parse_command_line(argv)
        sweep = Sweep(args.tasks or TASKS, args.seeds, flags, args.logdir)
        if args.slurm:
            return _submit(sweep, args)
        if args.dry_run:
            cores = len(os.sched_getaffinity(0))
            for job in sweep.jobs(max(1, cores // (args.parallel or cores))):
                print(f"{shlex.join(job.command)} >> {shlex.quote(sweep.log_path(job))} 2>&1")
            return 0
        return sweep.run_here(args.parallel)
    except SweepError as exc:
        print(f"run.sh: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SubmitError as exc:
        print(f"run.sh: error: {exc}", file=sys.stderr)
        return 1


def _submit(sweep: Sweep, args: argparse.Namespace) -> int:
    if args.dry_run:
        _, todo, left_out = sweep.plan(args.parallel, **args.sbatch)
        print(sweep.sbatch_script(args.parallel, **args.sbatch))
        for index, job in enumerate(todo):
            print(f"# array index {index}: {shlex.join(job.command)}")
    else:
        submission = sweep.submit(args.parallel, **args.sbatch)
        todo, left_out = submission.runs, submission.left_out
    for job, reason in left_out:
        print(f"{'# ' if args.dry_run else ''}not submitted ({reason}): {job.name}, {job.run_dir}")
    if not todo:
        print(f"{'# ' if args.dry_run else ''}nothing to submit: all {len(left_out)} runs of this sweep are finished "
              "or running")
        return 0
    if args.dry_run:
        return 0
    job_id = submission.job_id
    print(f"submitted job array {job_id}: {len(todo)} runs, at most {min(len(todo), args.parallel or len(todo))} at once")
    for job, run in zip(submission.jobs, submission.runs):
        print(f"  {job.job_id:<10} {run.name:<22} {run.run_dir}")
    print(f"logs:   {sweep.logdir}/jobs/{job_id}_<index>_0_log.out (one per array task, every attempt)")
    print(f"watch:  squeue -j {job_id}    bash run.sh --status {sweep.logdir}")
    print(f"cancel: scancel {job_id}")
    return 0
