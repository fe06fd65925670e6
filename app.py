"""SFT Studio browser app: python app.py [--host 127.0.0.1] [--port 7860] [--auth user:pass]."""
from __future__ import annotations

import argparse
import sys

from core.data.tables import DataLimits
from core.runs.store import RunStore


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="SFT Studio: fine-tune transformers in the browser")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="create a public Gradio share link (off by default)")
    parser.add_argument("--auth", default=None, help="require a login, as user:password")
    parser.add_argument("--runs", default=None, help="runs folder (default ./runs or $SFT_STUDIO_RUNS)")
    parser.add_argument("--max-upload-mb", type=int, default=200, help="largest upload accepted")
    parser.add_argument("--max-rows", type=int, default=1_000_000, help="most rows accepted in a table")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    auth = None
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep or not user or not password:
            print("error: --auth must look like user:password", file=sys.stderr)
            return 2
        auth = (user, password)
    if args.host not in ("127.0.0.1", "localhost", "::1") and auth is None:
        print(f"WARNING: binding {args.host} without --auth lets anyone on the network train and read models.",
              file=sys.stderr)
    from ui.app import build_app, launch
    from ui.context import AppContext

    ctx = AppContext(store=RunStore(args.runs), limits=DataLimits(args.max_upload_mb * 2**20, args.max_rows))
    launch(build_app(ctx), server_name=args.host, server_port=args.port, share=args.share, auth=auth,
           max_file_size=f"{args.max_upload_mb}mb")
    return 0


if __name__ == "__main__":
    sys.exit(main())
