"""``compare-held-out``: is a new run at least as good as the served one on the same held-out rows?"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..deploy.held_out_check import compare_held_out
from .args import EXIT_OK, run_path


def cmd_compare_held_out(args: argparse.Namespace) -> int:
    report = compare_held_out(run_path(args, args.served), run_path(args, args.new),
                              Path(args.rows) if args.rows else None)
    print(json.dumps(report.to_dict(), indent=2) if args.json else "\n".join(report.lines()))
    return EXIT_OK


def add_compare_held_out(sub: argparse._SubParsersAction) -> None:
    compare = sub.add_parser("compare-held-out", help="compare a new run with the served one on the served run's "
                             "validation rows (+ extra held-out rows): metrics, 95%% paired bootstrap interval, "
                             "verdict")
    compare.add_argument("--served", required=True, help="the served run (folder or run id)")
    compare.add_argument("--new", required=True, help="the new run (folder or run id)")
    compare.add_argument("--rows", default=None, help="extra held-out rows (CSV in the run's own columns)")
    compare.add_argument("--json", action="store_true", help="print the report as JSON")
    compare.set_defaults(func=cmd_compare_held_out)
