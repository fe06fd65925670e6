"""``review``: the served predictions most worth a person's look, their answers, and a training table made of them.

    python -m core review --run RUN [--db URL] [--size 40] [--json] [--answer ID=LABEL ...] [--interactive]
                          [--table next.csv]
"""
from __future__ import annotations

import argparse
import json
import sys

from ..common.errors import DataError
from ..deploy.monitoring.report import LogView, open_log
from ..deploy.monitoring.review import (ReviewItem, ReviewQueue, record_answers, review_accuracy, review_queue,
                                        reviewed_table)
from ..runs.run_folder import RunFolder
from .args import EXIT_OK, key_value_flags, run_path




def shown(item: ReviewItem, n: int | None = None) -> str:
    """An item as lines: id, reason, the model's answer (and the classical one), then the input text(s)."""
    classical = f", classical model: {item.classical}" if item.classical else ""
    number = "" if n is None else f"{n:>3}. "
    head = f"{number}{item.id}  [{item.reason}]  {item.label} ({item.confidence:.0%}{classical})"
    return "\n".join([head, *(f"       {role}: {text[:300]}" for role, text in item.inputs.items())])


def print_queue(queue: ReviewQueue) -> None:
    print(f"{len(queue.items)} of {queue.waiting:,} predictions without an answer:")
    for n, item in enumerate(queue.items, 1):
        print(shown(item, n))
    print(queue.accuracy.line())


def picked(typed: str, item: ReviewItem, labels: list[str]) -> str | None:
    """The label a terminal answer means: Enter the model's, 1-9 the n-th label, or a label typed out."""
    if not typed:
        return item.label
    if typed.isdigit() and 0 < int(typed) <= min(9, len(labels)):
        return labels[int(typed) - 1]
    return typed if typed in labels else None


def ask(view: LogView, queue: ReviewQueue) -> int:
    """One item at a time on the terminal: 1-9 picks a label, Enter accepts the model's answer, s skips, q stops."""
    labels, saved = queue.labels, 0
    print("  ".join(f"{n}={label}" for n, label in enumerate(labels[:9], 1)) + "  Enter=accept  s=skip  q=quit")
    for item in queue.items:
        print(shown(item))
        while True:
            typed = input("answer> ").strip()
            if typed.lower() in ("s", "q"):
                break
            if (label := picked(typed, item, labels)) is not None:
                saved += record_answers(view, {item.id: label})
                break
            print(f"  1-{min(9, len(labels))}, a label, Enter, s or q")
        if typed.lower() == "q":
            break
    return saved


def cmd_review(args: argparse.Namespace) -> int:
    if not (args.db or args.run):
        raise DataError("Give --run RUN (the run served with the monitor) or --db URL (a request-log database).")
    view = open_log(args.db or run_path(args) / RunFolder.MONITOR_DB)
    if args.answer:
        answers = key_value_flags(args.answer, "--answer", "ID=LABEL", "3f2a...=sport")
        print(f"recorded {record_answers(view, answers)} answer(s)")
    if args.table:
        table = reviewed_table(view, args.table)
        print(f"wrote {table.path} ({table.rows:,} rows: {table.added:,} reviewed) and {table.held_out_path} "
              f"({table.held_out:,} held-out reviewed rows)")
    if args.interactive:
        if not sys.stdin.isatty():
            raise DataError("--interactive needs a terminal; give answers with --answer ID=LABEL instead.")
        try:
            print(f"recorded {ask(view, review_queue(view, args.size))} answer(s)")
        except (EOFError, KeyboardInterrupt):
            print()
        print(review_accuracy(view).line())
    elif args.json:
        print(json.dumps(review_queue(view, args.size).to_dict(), indent=1, ensure_ascii=False))
    elif not (args.answer or args.table):
        print_queue(review_queue(view, args.size))
    return EXIT_OK


def add_review(sub: argparse._SubParsersAction) -> None:
    review = sub.add_parser("review", help="the served predictions most worth a person's look (one-label classifiers "
                                           "served with --log-inputs), answers and a training table from them")
    review.add_argument("--run", default=None, help="run id or folder served with the monitor")
    review.add_argument("--db", default=None, help="or a request-log database (SQLAlchemy URL or SQLite file)")
    review.add_argument("--size", type=int, default=40, help="how many predictions to list")
    review.add_argument("--json", action="store_true", help="print the queue as JSON (as GET /v1/review)")
    review.add_argument("--answer", action="append", default=[], metavar="ID=LABEL",
                        help="record the true label of a prediction (repeatable)")
    review.add_argument("--interactive", action="store_true",
                        help="ask one prediction at a time: 1-9 picks a label, Enter accepts, s skips, q quits")
    review.add_argument("--table", default=None, metavar="CSV",
                        help="write the run's rows + 70%% of the reviewed predictions, and the other 30%% beside it "
                             "as CSV_held_out.csv")
    review.set_defaults(func=cmd_review)
