"""Looking before training: a table's quality report (``inspect``) and what is there: ``runs``, ``samples``,
``models``."""
from __future__ import annotations

import argparse
import json
import sys

from ..common.errors import StudioError
from ..data.samples import SAMPLES, sample_path
from ..data.tables import DataLimits, read_table
from ..models.registry import REGISTRY
from ..runs.config import TrainConfig
from ..runs.store import RunStore
from ..tasks import TASKS, column_roles, detect_task, get_task
from .args import EXIT_OK, role_flags


def cmd_inspect(args: argparse.Namespace) -> int:
    """The data-quality report of a table, as text or JSON."""
    from ..insight.quality import inspect

    table = read_table(args.data, DataLimits(max_bytes=args.max_mb * 2**20))
    task = get_task(args.task or detect_task(table))
    data = task.prepare(table, column_roles(task.name, role_flags(args.col), args.text_col, args.label_col))
    report = inspect(task, data, args.model, args.max_length, args.val_fraction, args.seed)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
        return EXIT_OK
    print(f"{task.name}: {len(data):,} rows checked in {report.seconds:.1f} s")
    for finding in report.findings:
        mark = {"ok": "ok  ", "info": "info", "warning": "WARN"}[finding.severity]
        print(f"[{mark}] {finding.title}: {finding.detail}")
        for example in finding.examples[:3]:
            print("         " + " | ".join(f"{k}={v}" for k, v in example.items()))
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    runs = RunStore(args.runs).list()
    if not runs:
        print("no runs yet")
    for r in runs:  # each run's own task's metrics (macro-F1, RMSE, entity F1, ...)
        print(f"{r.run_id}\t{r.status}\t{r.task}\t{r.base_model}\t{r.data_name}\t"
              f"{get_task(r.task).headline(r.metrics) or '-'}")
    return EXIT_OK


def cmd_samples(args: argparse.Namespace) -> int:
    for name, sample in SAMPLES.items():
        try:
            print(f"{name} [{sample.task}]: {sample_path(name)}  ({sample.description})")
        except StudioError as exc:  # one missing data package must not stop the others (or `make run`)
            print(f"{name} [{sample.task}]: not available: {exc.message}", file=sys.stderr)
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    for key, model in REGISTRY.items():
        try:
            if model.needs_conversion:
                print(f"{key}: converting {model.packed_file} once into {model.converted_dir} ...", flush=True)
            print(f"{key}: {model.path()}  ({model.label})")
        except StudioError as exc:  # one missing model package must not stop the others (or `make run`)
            print(f"{key}: not available: {exc.message}", file=sys.stderr)
    return EXIT_OK


def add_inspect(sub: argparse._SubParsersAction) -> None:
    inspect = sub.add_parser("inspect", help="data-quality report: duplicates, conflicting labels, leakage, ...")
    inspect.add_argument("data", help="CSV, TSV, JSONL, Excel or CoNLL file")
    inspect.add_argument("--task", choices=list(TASKS), default=None, help="default: detected from the table")
    inspect.add_argument("--text-col", dest="text_col", default=None)
    inspect.add_argument("--label-col", dest="label_col", default=None)
    inspect.add_argument("--col", action="append", default=[], metavar="ROLE=COLUMN")
    inspect.add_argument("--model", default=None, help="base model whose tokenizer measures lengths (default: suggested)")
    inspect.add_argument("--max-length", type=int, default=TrainConfig.max_length)
    inspect.add_argument("--val-fraction", type=float, default=TrainConfig.val_fraction)
    inspect.add_argument("--seed", type=int, default=TrainConfig.seed)
    inspect.add_argument("--max-mb", type=int, default=200, help="largest data file accepted, in MB")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    inspect.set_defaults(func=cmd_inspect)


def add_lists(sub: argparse._SubParsersAction) -> None:
    """``runs``, ``samples`` and ``models``: commands without flags of their own."""
    sub.add_parser("runs", help="list runs").set_defaults(func=cmd_runs)
    sub.add_parser("samples", help="build the sample datasets").set_defaults(func=cmd_samples)
    sub.add_parser("models", help="list the base models, converting packed ones once").set_defaults(func=cmd_models)
