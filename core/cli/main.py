"""Headless command line: the same engine, config and run store as the browser app."""
from __future__ import annotations

import argparse
import sys

from ..common.errors import StudioError
from . import deploy, held_out, inspect, review, slices, train, tune, versions
from .args import EXIT_BAD_INPUT

# Each adds its subcommand, in the order `--help` lists them.
COMMANDS = (train.add_train, tune.add_tune, inspect.add_inspect, deploy.add_predict, train.add_resume,
            train.add_learning_curve, slices.add_slices,
            deploy.add_export, deploy.add_serve, deploy.add_chat, deploy.add_monitor, review.add_review,
            versions.add_versions, versions.add_promote, held_out.add_compare_held_out, inspect.add_lists)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="SFT Studio headless CLI")
    parser.add_argument("--runs", default=None, help="runs folder (default: ./runs or $SFT_STUDIO_RUNS)")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except StudioError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_BAD_INPUT
