"""``train`` and ``resume``: a run in this process, its events shown as a progress bar and lines of text."""
from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from ..common.errors import ConfigError
from ..data.tables import DataLimits
from ..runs import events as ev
from ..runs.config import TrainConfig
from ..runs.settings import add_flags, settings_from_args
from ..runs.store import RunStore
from ..tasks import TASKS
from ..train import service
from ..train.base_run import base_model_path
from ..train.engine import TrainingJob
from ..train.learning_curve import learning_curve
from ..train.render import event_line, outcome_lines, started_lines, step_stats
from .args import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, role_flags, run_path


def cmd_train(args: argparse.Namespace) -> int:
    settings = settings_from_args(args, TrainConfig)
    if "base_model" in settings:  # a run id trains on from that run
        settings["base_model"] = base_model_path(settings["base_model"], RunStore(args.runs))
    plan = service.plan_run(args.data, settings, role_flags(args.col),
                            limits=DataLimits(max_bytes=args.max_mb * 2**20), text_column=args.text_col,
                            label_column=args.label_col, base=TrainConfig.load(args.config) if args.config else None)
    print(plan.describe())
    if args.prepare_only and plan.config.folds > 1:
        raise ConfigError("--prepare-only writes one run; cross-validation trains one per fold (use --folds 1).")
    job = service.make_job(plan, RunStore(args.runs))
    if args.prepare_only:
        run_dir = job.prepare_folder()
        print(f"run folder: {run_dir}\nstart one worker per machine: "
              f"accelerate launch --config_file YOUR_CONFIG.yaml -m core.train.worker {run_dir}")
        return EXIT_OK
    return follow(job.start())


def cmd_resume(args: argparse.Namespace) -> int:
    run_dir = run_path(args)
    return follow(TrainingJob.resume(run_dir).start())


def follow(job: TrainingJob) -> int:
    """Show the job's events as a progress bar until it ends; Ctrl-C cancels and keeps the best model."""
    bar = None

    def show(event: ev.Event) -> None:
        nonlocal bar
        if isinstance(event, ev.Started):
            if bar is not None:  # the next fold of a cross-validation
                bar.close()
            bar = tqdm(total=event.total_steps, unit="step", dynamic_ncols=True)
            for line in started_lines(event):
                print(line, file=sys.stderr)
        elif isinstance(event, ev.Step):
            if bar is not None:
                bar.total = event.total_steps
                bar.update(event.step - bar.n)
                bar.set_postfix(step_stats(event))
        elif (line := event_line(job.task, event)) is not None:
            tqdm.write(line)

    try:
        outcome = service.wait_for_outcome(job, show, poll_s=0.5)
    except KeyboardInterrupt:
        job.cancel()
        job.join()
        outcome = job.events.since(0)[-1]
    job.join()
    if bar is not None:
        bar.close()
    failed = isinstance(outcome, ev.Failed)
    for line in outcome_lines(job.task, outcome):
        print(line, file=sys.stderr if failed else sys.stdout)
    if failed:
        return EXIT_FAILED
    return EXIT_OK if isinstance(outcome, ev.Finished) else EXIT_CANCELLED


def add_train(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help=f"fine-tune a model on a table ({', '.join(TASKS)})")
    train.add_argument("--data", required=True, help="CSV, TSV, JSONL or Excel file")
    train.add_argument("--text-col", "--prompt-col", dest="text_col", default=None,
                       help="text column (prompt column with --task assistant)")
    train.add_argument("--label-col", "--response-col", dest="label_col", default=None,
                       help="label column (response column with --task assistant)")
    train.add_argument("--col", action="append", default=[], metavar="ROLE=COLUMN",
                       help="column of a task role, e.g. --col text_a=question1 (repeatable)")
    train.add_argument("--config", default=None, help="train_config.json to start from")
    train.add_argument("--max-mb", type=int, default=200, help="largest data file accepted, in MB")
    train.add_argument("--prepare-only", action="store_true",
                       help="write the run folder for `accelerate launch -m core.train.worker RUN_DIR` on several machines")
    add_flags(train, TrainConfig)
    train.set_defaults(func=cmd_train)


def cmd_learning_curve(args: argparse.Namespace) -> int:
    def trained(job: TrainingJob) -> ev.Event:
        follow(job.start())
        return job.events.since(0)[-1]

    curve = learning_curve(run_path(args), RunStore(args.runs), trained)
    for point in sorted(curve.points, key=lambda p: p.rows):
        print(f"{point.rows:>8,} training rows: {curve.metric_name} {point.score:.4f}")
    print(curve.sentence())
    return EXIT_OK


def add_learning_curve(sub: argparse._SubParsersAction) -> None:
    curve = sub.add_parser("learning-curve", help="would more labels help? train a run again on 25/50/75%% of its "
                           "training rows and fit a power law")
    curve.add_argument("--run", required=True, help="a finished run folder or run id")
    curve.set_defaults(func=cmd_learning_curve)


def add_resume(sub: argparse._SubParsersAction) -> None:
    resume = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    resume.add_argument("--run", required=True, help="run folder or run id")
    resume.set_defaults(func=cmd_resume)
