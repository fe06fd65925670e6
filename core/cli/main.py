"""Headless command line: the same engine, config and run store as the browser app."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from tqdm import tqdm

from ..common.errors import DataError, StudioError
from ..data.samples import SAMPLES, sample_path
from ..data.tables import DataLimits, read_table
from ..deploy.chat import ChatModel
from ..deploy.export import EXPORTERS, FORMATS, cached_export, export_run
from ..deploy.predict import Predictor
from ..insight.verdict import baselines_line, judge
from ..models.registry import REGISTRY
from ..runs import events as ev
from ..runs.config import TrainConfig
from ..runs.run_folder import RunFolder
from ..runs.store import RunStore
from ..tasks import TASKS, column_roles, detect_task, get_task
from ..train import service
from ..train.engine import TrainingJob

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CANCELLED = 0, 1, 2, 130


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    for f in fields(TrainConfig):
        flag = f"--{f.name.replace('_', '-')}"
        if isinstance(f.default, bool):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None)
        else:
            parser.add_argument(flag, dest=f.name, type=type(f.default), default=None)


def role_flags(pairs: list[str]) -> dict[str, str]:
    """``--col ROLE=COLUMN`` flags as {role: column}."""
    columns = {}
    for pair in pairs:
        role, _, column = pair.partition("=")
        if not role or not column:
            raise DataError(f"--col takes ROLE=COLUMN, e.g. --col text_a=question1 (got '{pair}').")
        columns[role] = column
    return columns


def _given_settings(args: argparse.Namespace) -> dict:
    """The TrainConfig fields given as flags."""
    return {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}


def cmd_train(args: argparse.Namespace) -> int:
    plan = service.plan_run(args.data, _given_settings(args), role_flags(args.col),
                            limits=DataLimits(max_bytes=args.max_mb * 2**20), text_column=args.text_col,
                            label_column=args.label_col, base=TrainConfig.load(args.config) if args.config else None)
    print(plan.describe())
    job = service.make_job(plan, RunStore(args.runs))
    if args.prepare_only:
        run_dir = job.prepare_folder()
        print(f"run folder: {run_dir}\nstart one worker per machine: "
              f"accelerate launch --config_file YOUR_CONFIG.yaml -m core.train.worker {run_dir}")
        return EXIT_OK
    return _follow(job.start())


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
        record, study = search.create_study(args.data, _given_settings(args), role_flags(args.col), settings,
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


def run_path(args: argparse.Namespace) -> Path:
    """``--run``: a run folder, or a run id in the runs folder."""
    return Path(args.run).resolve() if Path(args.run).is_dir() else RunStore(args.runs).path_of(args.run)


def cmd_resume(args: argparse.Namespace) -> int:
    run_dir = run_path(args)
    return _follow(TrainingJob.resume(run_dir).start())


def cmd_chat(args: argparse.Namespace) -> int:
    model = ChatModel(args.run)
    for question in args.messages:
        print(model.reply([{"role": "user", "content": question}], args.temperature, args.max_new_tokens))
    return EXIT_OK


def _follow(job: TrainingJob) -> int:
    """Show the job's events as a progress bar until it ends; Ctrl-C cancels and keeps the best model."""
    bar = None

    def show(event: ev.Event) -> None:
        nonlocal bar
        if isinstance(event, ev.Started):
            bar = tqdm(total=event.total_steps, unit="step", dynamic_ncols=True)
            print(f"run folder: {event.run_dir}  precision: {event.precision}", file=sys.stderr)
            print(f"schedule: {event.schedule}", file=sys.stderr)
            for warning in event.warnings:
                print(f"warning: {warning}", file=sys.stderr)
        elif isinstance(event, ev.Baselines):
            if (line := baselines_line(job.task, event.trivial, event.classical)):
                tqdm.write(line)
        elif isinstance(event, ev.Step) and bar is not None:
            bar.total = event.total_steps
            bar.update(event.step - bar.n)
            bar.set_postfix(loss=f"{event.loss:.4f}", samples_s=f"{event.samples_per_s:.1f}")
        elif isinstance(event, ev.Evaluation):
            tqdm.write(f"eval step {event.step}: loss {event.loss:.4f}  {job.task.headline(event.metrics)}"
                       f"{'  (best)' if event.is_best else ''}")
        elif isinstance(event, ev.Status):
            tqdm.write(event.message)

    try:
        outcome = service.wait_for_outcome(job, show, poll_s=0.5)
    except KeyboardInterrupt:
        job.cancel()
        job.join()
        outcome = job.events.since(0)[-1]
    job.join()
    if bar is not None:
        bar.close()
    if isinstance(outcome, ev.Failed):
        print(f"error: {outcome.message}", file=sys.stderr)
        return EXIT_FAILED
    m = outcome.metrics
    if m.get("val_loss") is not None:
        print(f"validation loss {m['val_loss']:.4f}  {job.task.headline(m)}")
    if m.get("baseline"):
        print(f"baseline ({m['baseline']['name']}): {job.task.headline(m['baseline'])}")
    if m.get("classical") and "skipped" not in m["classical"]:
        print(f"classical baseline ({m['classical']['name']}, {m['classical']['seconds']:.1f} s): "
              f"{job.task.headline(m['classical'])}")
    if (verdict := judge(job.task, m)).text:
        print(("" if verdict.beats is not False else "warning: ") + verdict.text)
    print(f"train time {m['train_seconds']:.1f} s  samples/s {m['samples_per_s'] or 0:.1f}")
    print(f"run folder: {outcome.run_dir}")
    return EXIT_OK if isinstance(outcome, ev.Finished) else EXIT_CANCELLED


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
            shown = predictor.task.columns_of(p)
            print("\t".join(str(v) for v in shown.values()) + "\t" + " | ".join(rows[r][i] for r in inputs))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    print(f"wrote {export_run(args.run, args.out, args.format)}")
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


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..deploy.serve import MonitorOptions, create_app, serves_assistant

    folder = run_path(args)
    monitor = None if args.no_monitor else MonitorOptions(args.monitor_db, args.log_inputs, run_dir=folder)
    if args.format != "hf":
        print(f"{folder.name} as {args.format}: exported into the cache on first use, then reused ...", flush=True)
        folder = cached_export(folder, args.format)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.token:
        print(f"warning: serving on {args.host} without --token: anyone who reaches it can use the model",
              file=sys.stderr)
    app = create_app(folder, args.token, monitor_options=monitor)
    routes = ("OpenAI-compatible: POST /v1/chat/completions, GET /v1/models" if serves_assistant(folder) else
              "POST /v1/predict; monitor: GET /v1/monitor, POST /v1/feedback, GET /metrics")
    print(f"serving {folder.name} on http://{args.host}:{args.port} ({routes}; GET /healthz, /docs)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
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


def cmd_models(args: argparse.Namespace) -> int:
    for key, model in REGISTRY.items():
        try:
            if model.needs_conversion:
                print(f"{key}: converting {model.packed_file} once into {model.converted_dir} ...", flush=True)
            print(f"{key}: {model.path()}  ({model.label})")
        except StudioError as exc:  # one missing model package must not stop the others (or `make run`)
            print(f"{key}: not available: {exc.message}", file=sys.stderr)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="SFT Studio headless CLI")
    parser.add_argument("--runs", default=None, help="runs folder (default: ./runs or $SFT_STUDIO_RUNS)")
    sub = parser.add_subparsers(dest="command", required=True)
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
    _add_config_flags(train)
    train.set_defaults(func=cmd_train)
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
    _add_config_flags(tune)
    tune.set_defaults(func=cmd_tune)
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
    predict = sub.add_parser("predict", help="predict with a saved run")
    predict.add_argument("--run", required=True, help="run folder")
    predict.add_argument("--file", default=None, help="table to predict; writes a CSV with predictions")
    predict.add_argument("--out", default=None)
    predict.add_argument("--text-col", default=None)
    predict.add_argument("--col", action="append", default=[], metavar="ROLE=COLUMN")
    predict.add_argument("texts", nargs="*", help="texts to predict (pairs: text_a text_b text_a text_b ...)")
    predict.set_defaults(func=cmd_predict)
    resume = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    resume.add_argument("--run", required=True, help="run folder or run id")
    resume.set_defaults(func=cmd_resume)
    export = sub.add_parser("export", help="write a run as a plain Hugging Face folder (LoRA merged in)")
    export.add_argument("--run", required=True, help="run folder")
    export.add_argument("--out", required=True, help="new folder to write")
    export.add_argument("--format", choices=FORMATS, default="hf",
                        help="; ".join(f"{name}: {e.titles[0]}" for name, e in EXPORTERS.items()))
    export.set_defaults(func=cmd_export)
    serve = sub.add_parser("serve", help="serve a run over HTTP: POST /v1/predict (assistants: OpenAI-compatible "
                                          "/v1/chat/completions), GET /healthz")
    serve.add_argument("--run", required=True, help="run folder, run id or export folder")
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
    chat = sub.add_parser("chat", help="ask an assistant run (or a base model key) one or more questions")
    chat.add_argument("--run", required=True, help="assistant run folder or base model key")
    chat.add_argument("--temperature", type=float, default=0.0)
    chat.add_argument("--max-new-tokens", type=int, default=128)
    chat.add_argument("messages", nargs="+")
    chat.set_defaults(func=cmd_chat)
    monitor = sub.add_parser("monitor", help="drift report of a served run's request log")
    monitor.add_argument("--run", default=None, help="run id or folder served with the monitor")
    monitor.add_argument("--db", default=None, help="or a request-log database (SQLAlchemy URL or SQLite file)")
    monitor.add_argument("--last", type=int, default=500, help="judge the newest N predictions")
    monitor.add_argument("--json", action="store_true", help="print the report as JSON (as GET /v1/monitor)")
    monitor.set_defaults(func=cmd_monitor)
    sub.add_parser("runs", help="list runs").set_defaults(func=cmd_runs)
    sub.add_parser("samples", help="build the sample datasets").set_defaults(func=cmd_samples)
    sub.add_parser("models", help="list the base models, converting packed ones once").set_defaults(func=cmd_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except StudioError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_BAD_INPUT
