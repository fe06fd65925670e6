"""Using a trained run: ``predict``, ``export``, ``serve``, ``chat`` and the served run's drift report, ``monitor``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..common.errors import DataError, StudioError
from ..deploy.chat import ChatModel
from ..deploy.export import EXPORTERS, FORMATS, cached_export, export_run
from ..deploy.predict import Predictor
from ..runs.run_folder import RunFolder
from .args import EXIT_OK, role_flags, run_path
from .versions import served_model


def cmd_predict(args: argparse.Namespace) -> int:
    predictor = Predictor(args.run)
    if args.file:
        out = args.out or str(Path(args.file).with_suffix("")) + "_predictions.csv"
        columns = {predictor.inputs[0]: args.text_col, **role_flags(args.col)}
        predictor.predict_file(args.file, out, {k: v for k, v in columns.items() if v})
        print(f"wrote {out}")
    if not args.texts and not args.file:
        raise StudioError("Give one or more texts, or --file FILE.")
    if args.texts:
        inputs = predictor.inputs
        if len(args.texts) % len(inputs):
            raise DataError(f"This model reads {len(inputs)} texts per row ({', '.join(inputs)}); "
                            f"give them in that order.")
        rows = {role: args.texts[i::len(inputs)] for i, role in enumerate(inputs)}
        for i, p in enumerate(predictor.predict(rows)):
            shown = predictor.task.output.columns(p)
            print("\t".join(str(v) for v in shown.values()) + "\t" + " | ".join(rows[r][i] for r in inputs))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    print(f"wrote {export_run(args.run, args.out, args.format)}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..deploy.serve import MonitorOptions, create_app, serves_assistant

    folder, named, label = served_model(args)
    monitor = None if args.no_monitor else MonitorOptions(args.monitor_db, args.log_inputs, run_dir=folder)
    if args.format != "hf":
        print(f"{folder.name} as {args.format}: exported into the cache on first use, then reused ...", flush=True)
        folder = cached_export(folder, args.format)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.token:
        print(f"warning: serving on {args.host} without --token: anyone who reaches it can use the model",
              file=sys.stderr)
    app = create_app(folder, args.token, monitor_options=monitor, named=named, label=label)
    routes = ("OpenAI-compatible: POST /v1/chat/completions, GET /v1/models" if serves_assistant(folder) else
              "POST /v1/predict, /v1/promote; monitor: GET /v1/monitor, POST /v1/feedback, GET /metrics")
    print(f"serving {label} on http://{args.host}:{args.port} ({routes}; GET /healthz, /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return EXIT_OK


def cmd_chat(args: argparse.Namespace) -> int:
    model = ChatModel(args.run)
    for question in args.messages:
        print(model.reply([{"role": "user", "content": question}], args.temperature, args.max_new_tokens))
    return EXIT_OK


def cmd_monitor(args: argparse.Namespace) -> int:
    """The drift report of a served run's request log (or any log database), as text or JSON."""
    from ..deploy.monitoring.report import open_log

    if not (args.db or args.run):
        raise DataError("Give --run RUN (the run served with the monitor) or --db URL (a request-log database).")
    database = args.db or run_path(args) / RunFolder.MONITOR_DB
    found = open_log(database).report(args.last)
    if args.json:
        print(json.dumps(found, indent=1, ensure_ascii=False))
        return EXIT_OK
    print(found["verdict"])
    for check in found["checks"]:
        state = f"drifted ({check['severity']})" if check["drifted"] else "ok"
        print(f"  {check['name']:<22} {check['test']:<10} p={check['p_value']:.2g}  PSI={check['psi']:.3f}  {state:<18} "
              f"{check['detail']}")
    feedback = found["feedback"]
    if feedback["value"] is not None:
        print(f"  feedback: {feedback['metric']} {feedback['value']:.3f} on {feedback['labelled']} predictions")
    return EXIT_OK


def add_predict(sub: argparse._SubParsersAction) -> None:
    predict = sub.add_parser("predict", help="predict with a saved run")
    predict.add_argument("--run", required=True, help="run folder")
    predict.add_argument("--file", default=None, help="table to predict; writes a CSV with predictions")
    predict.add_argument("--out", default=None)
    predict.add_argument("--text-col", default=None)
    predict.add_argument("--col", action="append", default=[], metavar="ROLE=COLUMN")
    predict.add_argument("texts", nargs="*", help="texts to predict (pairs: text_a text_b text_a text_b ...)")
    predict.set_defaults(func=cmd_predict)


def add_export(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="write a run as a plain Hugging Face folder (LoRA merged in)")
    export.add_argument("--run", required=True, help="run folder")
    export.add_argument("--out", required=True, help="new folder to write")
    export.add_argument("--format", choices=FORMATS, default="hf",
                        help="; ".join(f"{name}: {e.titles[0]}" for name, e in EXPORTERS.items()))
    export.set_defaults(func=cmd_export)


def add_serve(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="serve a run over HTTP: POST /v1/predict (assistants: OpenAI-compatible "
                                          "/v1/chat/completions), GET /healthz")
    serve.add_argument("--run", default=None, help="run folder, run id or export folder")
    serve.add_argument("--model", default=None, help="or a served name: its version under --alias (`versions`)")
    serve.add_argument("--alias", default=None, help="with --model: the alias or version number to serve "
                                                     "(default: production, else the newest)")
    serve.add_argument("--format", choices=FORMATS, default="hf", help="serve the run as is (hf) or exported first")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' on /v1/ requests")
    serve.add_argument("--monitor-db", default=None,
                       help="request log database: a SQLAlchemy URL or a SQLite file (default: monitor.db beside the model)")
    serve.add_argument("--log-inputs", action="store_true",
                       help="keep each request's text in the log (needed to turn feedback into training rows)")
    serve.add_argument("--no-monitor", action="store_true", help="no request log, drift report or /metrics")
    serve.set_defaults(func=cmd_serve)


def add_chat(sub: argparse._SubParsersAction) -> None:
    chat = sub.add_parser("chat", help="ask an assistant run (or a base model key) one or more questions")
    chat.add_argument("--run", required=True, help="assistant run folder or base model key")
    chat.add_argument("--temperature", type=float, default=0.0)
    chat.add_argument("--max-new-tokens", type=int, default=128)
    chat.add_argument("messages", nargs="+")
    chat.set_defaults(func=cmd_chat)


def add_monitor(sub: argparse._SubParsersAction) -> None:
    monitor = sub.add_parser("monitor", help="drift report of a served run's request log")
    monitor.add_argument("--run", default=None, help="run id or folder served with the monitor")
    monitor.add_argument("--db", default=None, help="or a request-log database (SQLAlchemy URL or SQLite file)")
    monitor.add_argument("--last", type=int, default=500, help="judge the newest N predictions")
    monitor.add_argument("--json", action="store_true", help="print the report as JSON (as GET /v1/monitor)")
    monitor.set_defaults(func=cmd_monitor)
