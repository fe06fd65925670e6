"""Model versions: ``versions`` (list, add, alias), ``promote`` (a running server or the registry alone) and the
``serve --model NAME`` lookup (core.deploy.versions)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..common.errors import DataError
from ..deploy.promote import TIMEOUT_S, promote_on_server
from ..deploy.versions import PRODUCTION, ModelVersion, NamedModel, Registry
from .args import EXIT_OK, run_path


def served_model(args: argparse.Namespace) -> tuple[Path, NamedModel | None, str]:
    """``serve``'s ``--run RUN`` or ``--model NAME [--alias ALIAS]``: the folder, the name if any, and its label."""
    if bool(args.run) == bool(args.model):
        raise DataError("Give either --run RUN or --model NAME.")
    if args.run:
        folder = run_path(args)
        return folder, None, folder.name
    registry = Registry(args.runs)
    version = registry.get(args.model, args.alias)
    return version.run, NamedModel(registry, args.model), version.label


def show(version: ModelVersion) -> str:
    aliases = f"  [{', '.join(version.aliases)}]" if version.aliases else ""
    return f"{version.label:<24} {version.signature.task:<16} {version.run}{aliases}"


def cmd_versions(args: argparse.Namespace) -> int:
    """List a name's versions; ``--add RUN`` registers the next one, ``--alias`` points an alias at one."""
    if args.version is not None and not args.alias:
        raise DataError("--version names the version --alias points at: give --alias ALIAS too.")
    registry = Registry(args.runs)
    added = registry.add(args.model, run_path(args)) if args.run else None
    if added and not args.json:
        print(f"added {added.label}")
    if args.alias:
        target = registry.set_alias(args.model, args.alias,
                                    args.version or (added or registry.versions(args.model)[-1]).version)
        if not args.json:
            print(f"{args.model}:{args.alias} -> {target.label}")
    found = registry.versions(args.model)
    if args.json:
        print(json.dumps([v.to_dict() for v in found], indent=1, ensure_ascii=False))
    else:
        print("\n".join(show(v) for v in found))
    return EXIT_OK


def cmd_promote(args: argparse.Namespace) -> int:
    """Swap a running server's model (``--server``), or move the name's production alias in the registry."""
    if bool(args.run) == (args.version is not None):
        raise DataError("Give either --run RUN or --version N (with --model NAME).")
    if args.server:
        print(promote_server(args))
        return EXIT_OK
    if not args.model:
        raise DataError("Give --server URL to promote on a running server, or --model NAME to move its production "
                        "alias in the registry.")
    registry = Registry(args.runs)
    version = registry.add(args.model, run_path(args)) if args.run else registry.get(args.model, args.version)
    registry.set_alias(args.model, PRODUCTION, version.version)
    print(f"{args.model}:{PRODUCTION} -> {version.label}")
    return EXIT_OK


def promote_server(args: argparse.Namespace) -> str:
    """POST /v1/promote on ``--server``; a line saying what it serves now."""
    return promote_on_server(args.server, run_path(args) if args.run else None, args.version, args.model, args.token,
                             args.timeout)


def add_versions(sub: argparse._SubParsersAction) -> None:
    versions = sub.add_parser("versions", help="a served name's numbered versions (run folders) and aliases")
    versions.add_argument("--model", required=True, help="the served name, e.g. reviews")
    versions.add_argument("--add", dest="run", default=None, metavar="RUN",
                          help="register a run folder or run id as the next version")
    versions.add_argument("--alias", default=None, help="point this alias (e.g. production, candidate) at --version "
                                                        "(default: the newest version)")
    versions.add_argument("--version", type=int, default=None, help="the version --alias points at")
    versions.add_argument("--json", action="store_true", help="print the versions as JSON")
    versions.set_defaults(func=cmd_versions)


def add_promote(sub: argparse._SubParsersAction) -> None:
    promote = sub.add_parser("promote", help="serve another run or version on a running server without dropping a "
                                             "request, or move a name's production alias")
    promote.add_argument("--run", default=None, help="the run folder or run id to promote")
    promote.add_argument("--version", type=int, default=None, help="or a version of --model (e.g. to roll back)")
    promote.add_argument("--model", default=None, help="the served name (required without --server)")
    promote.add_argument("--server", default=None, help="a running server, e.g. http://127.0.0.1:8000")
    promote.add_argument("--token", default=None, help="the server's token, if it was started with one")
    promote.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds to wait for the new model to load")
    promote.set_defaults(func=cmd_promote)
