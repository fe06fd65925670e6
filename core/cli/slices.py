"""``slices``: a run's validation metric per value of a column the model did not read, worst first."""
from __future__ import annotations

import argparse
import json

from ..insight.slices import INPUT_LENGTH, slice_run
from .args import EXIT_OK, run_path


def cmd_slices(args: argparse.Namespace) -> int:
    found = slice_run(run_path(args), args.by)
    print(json.dumps(found.to_dict(), ensure_ascii=False, indent=2) if args.json else "\n".join(found.lines()))
    return EXIT_OK


def add_slices(sub: argparse._SubParsersAction) -> None:
    slices = sub.add_parser("slices", help="a run's validation metric per value of a kept column, worst first")
    slices.add_argument("--run", required=True, help="run id or run folder")
    slices.add_argument("--by", required=True, metavar="COLUMN",
                        help=f"a column kept with the run (numbers are cut into quarters), or '{INPUT_LENGTH}'")
    slices.add_argument("--json", action="store_true", help="print the slices as JSON")
    slices.set_defaults(func=cmd_slices)
