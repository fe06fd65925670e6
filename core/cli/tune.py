"""``tune``: search training settings on Optuna, every trial a run; workers in other processes join a study."""
from __future__ import annotations

import argparse
import sys

from ..common.errors import DataError
from ..runs.config import TrainConfig
from ..runs.settings import add_flags, settings_from_args
from ..runs.store import RunStore
from .args import EXIT_FAILED, EXIT_OK, role_flags


def parse_duration(text: str | None) -> float | None:
    """'90' or '90s', '30m', '2h' as seconds."""
    if not text:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except ValueError:
        raise DataError(f"--timeout takes seconds or a duration like 90s, 30m or 2h (got '{text}').")


def cmd_tune(args: argparse.Namespace) -> int:
    """Search settings on Optuna; a worker joins an existing study instead of creating one."""
    from ..search import space as search_space
    from ..search import study as search

    runs = RunStore(args.runs)
    if args.worker:
        if not args.study:
            raise DataError("--worker joins a study: give its --study name (and --storage unless it is the default).")
        record, study = search.load_study(args.study, args.storage, runs.root)
        print(f"joined study {record.name}: {record.search.trials} trials of {', '.join(record.search.space)}")
    else:
        if not args.data:
            raise DataError("Give --data to start a search, or --worker --study NAME to join one.")
        space = search_space.parse_space(args.search, args.range)
        settings = search_space.SearchSettings(space, args.trials, parse_duration(args.timeout), args.seed_search,
                                               args.pruner, args.study, args.storage)
        record, study = search.create_study(args.data, settings_from_args(args, TrainConfig), role_flags(args.col), settings,
                                            runs.root, text_column=args.text_col, label_column=args.label_col)
        print(f"study {record.name}: {settings.trials} trials of {', '.join(record.search.space)} "
              f"({record.metric}, {'higher' if record.greater_is_better else 'lower'} is better); "
              f"join from another process: python -m core tune --worker --study {record.name}"
              + (f" --storage {args.storage}" if args.storage else f" --runs {runs.root}"))

    def show(result: search.TrialResult) -> None:
        value = "-" if result.value is None else f"{result.value:.4f}"
        pruned = f" at step {result.pruned_at}" if result.pruned_at else ""
        print(f"trial {result.number}: {result.state}{pruned}  {record.metric} {value}  "
              f"{result.seconds or 0:.0f} s  {search_space.shown_params(result.params)}  {result.run_id or ''}"
              + (f"  ({result.message})" if result.message else ""), flush=True)

    try:
        search.optimize(record, study, runs, on_trial=show)
    except KeyboardInterrupt:
        print("stopped; finished trials are kept", file=sys.stderr)
    best = search.best(study)
    if best is None:
        print("no trial completed")
        return EXIT_FAILED
    print(f"best: trial {best.number}  {record.metric} {best.value:.4f}  {search_space.shown_params(best.params)}\n"
          f"run folder: {runs.root / best.run_id}")
    return EXIT_OK


def add_tune(sub: argparse._SubParsersAction) -> None:
    tune = sub.add_parser("tune", help="search settings (Optuna): every trial is a run; --worker joins a study")
    tune.add_argument("--data", default=None, help="CSV, TSV, JSONL or Excel file (to start a study)")
    tune.add_argument("--text-col", dest="text_col", default=None)
    tune.add_argument("--label-col", dest="label_col", default=None)
    tune.add_argument("--col", action="append", default=[], metavar="ROLE=COLUMN")
    tune.add_argument("--search", default="learning_rate,epochs",
                      help="settings to search, comma-separated (lr, epochs, batch_size, max_length, dropout, warmup, "
                           "head_lr_scale, lora, rank, layers, model)")
    tune.add_argument("--range", action="append", default=[], metavar="NAME=LOW:HIGH",
                      help="a setting's range (NAME=A|B|C for choices), e.g. --range lr=1e-5:1e-3 (repeatable)")
    tune.add_argument("--trials", type=int, default=10, help="trials to finish, across every worker")
    tune.add_argument("--timeout", default=None, help="stop starting trials after this long, e.g. 30m")
    tune.add_argument("--pruner", default="median", help="median, halving or none")
    tune.add_argument("--seed-search", type=int, default=42, help="the sampler's seed (one worker: same trials)")
    tune.add_argument("--study", default=None, help="the study's name (default: from the data and the time)")
    tune.add_argument("--storage", default=None,
                      help="SQLAlchemy URL (sqlite:///..., postgresql://...) or a journal file (*.log) on a shared "
                           "file system; default: search.db in the runs folder")
    tune.add_argument("--worker", action="store_true", help="join an existing study (--study, --storage)")
    add_flags(tune, TrainConfig)
    tune.set_defaults(func=cmd_tune)
