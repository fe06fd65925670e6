"""Data tab: pick the task, upload or pick a sample, preview, choose the column of each role, see the balance."""
from __future__ import annotations

import html
import tempfile
from pathlib import Path

import gradio as gr

from core.common.atomic import write_csv_atomic
from core.common.errors import StudioError
from core.data.samples import DEFAULT_SAMPLE, SAMPLES, sample_path
from core.data.tables import read_table
from core.deploy.chat_feedback import feedback_table
from core.insight.quality import FIX_TITLES, QualityReport, apply_fix, inspect
from core.runs.config import DEFAULT_TASK, TrainConfig
from core.tasks import TASKS, detect_task, get_task
from core.train.crossval import small_table_hint

from . import charts
from .context import AppContext, error_md, ok_md
from .modalities import VIEWS, preview_updates
from .strings import t

TABLE_TYPES = [".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json", ".xlsx", ".xls", ".conll", ".bio", ".iob", ".zip"]
MAX_ROLES = 3


def role_dropdowns(task_name: str, columns: list[str], chosen: dict[str, str]) -> list:
    """One dropdown update per role of the task (labelled by the role); the spare ones hidden."""
    roles = get_task(task_name).roles
    return [gr.update(visible=True, label=f"{role.label.capitalize()} column", choices=columns,
                      value=chosen.get(role.name)) if i < len(roles) else gr.update(visible=False, value=None)
            for i, role in enumerate(list(roles) + [None] * (MAX_ROLES - len(roles)))]


def analyse(ctx: AppContext, path: str, name: str, columns: dict[str, str] | None = None, task: str | None = None):
    """Outputs: data state, preview, the role dropdowns, balance chart, task, the modalities' previews, message."""
    try:
        frame = read_table(path, ctx.limits)
    except StudioError as exc:
        return (None, None, *role_dropdowns(task or DEFAULT_TASK, [], {}), None, gr.skip(),
                *preview_updates(None, None), error_md(exc.message))
    task = task or detect_task(frame)
    spec = get_task(task)
    names = [str(c) for c in frame.columns]
    preview = frame.head(8).map(lambda v: v[:120] + "…" if isinstance(v, str) and len(v) > 120 else v)
    try:
        data = spec.prepare(frame, columns)
    except StudioError as exc:
        return (None, preview, *role_dropdowns(task, names, columns or {}), None, task,
                *preview_updates(None, None), error_md(exc.message))
    suggestion = spec.modality.suggest(spec, data)
    state = {"path": path, "name": Path(name).stem, "columns": data.columns, "task": task, "model": suggestion.model,
             "rows": len(data)}
    lines = ([f"✔ <b>{Path(name).name}</b> · {spec.view.title}: {spec.describe(data)}"] + [f"⚠ {w}" for w in data.warnings]
             + [f"{suggestion.message()} It is selected in the Train tab."]
             + [f"ℹ {hint}" for hint in [small_table_hint(len(data), TrainConfig().val_fraction)]
                if hint and spec.classical_name])
    balance = spec.balance(data)
    return (state, preview, *role_dropdowns(task, names, data.columns), charts.class_balance(balance) if balance else None,
            task, *preview_updates(spec, data), ok_md("<br>".join(lines)))


SEVERITY_ICONS = {"ok": "✔", "info": "ℹ", "warning": "⚠"}


def report_html(report: QualityReport) -> str:
    """Each finding as a line (icon, title, detail) with its examples in a table beneath."""
    parts = [f"<p><b>Data quality</b>: {report.rows:,} rows checked in {report.seconds:.1f} s.</p>"]
    for f in report.findings:
        table = ""
        if f.examples:
            heads = list(f.examples[0])
            table = ("<table class='dq-examples'><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in heads) + "</tr>"
                     + "".join("<tr>" + "".join(f"<td>{html.escape(str(e.get(h, '')))}</td>" for h in heads) + "</tr>"
                               for e in f.examples) + "</table>")
        parts.append(f"<details class='dq-finding dq-{f.severity}' data-key='{f.key}' data-count='{f.count}'"
                     f"{' open' if f.severity == 'warning' and f.examples else ''}><summary>{SEVERITY_ICONS[f.severity]} "
                     f"<b>{html.escape(f.title)}</b>: {html.escape(f.detail)}</summary>{table}</details>")
    return "".join(parts)


def quality_report(state: dict | None, ctx: AppContext) -> tuple:
    """Outputs: the report, then one visibility update per fix button (shown where the fix applies)."""
    if not state:
        return (error_md("Load data first: upload a file or pick a sample."),
                *(gr.update(visible=False) for _ in FIX_TITLES))
    try:
        task = get_task(state["task"])
        data = task.prepare(read_table(state["path"], ctx.limits), state["columns"])
        defaults = TrainConfig()
        report = inspect(task, data, state.get("model"), defaults.max_length, defaults.val_fraction, defaults.seed)
    except StudioError as exc:
        return error_md(exc.message), *(gr.update(visible=False) for _ in FIX_TITLES)
    return report_html(report), *(gr.update(visible=name in report.fixes) for name in FIX_TITLES)


def build(ctx: AppContext) -> dict:
    data_state = gr.State(None)
    task = gr.Radio([(t(f"task_{name}"), name) for name in TASKS], value=DEFAULT_TASK, label=t("task"),
                    info=t("task_info"), elem_id="task")
    with gr.Row():
        with gr.Column(scale=2):
            upload = gr.File(label=t("upload"), file_types=TABLE_TYPES, type="filepath", elem_id="data-upload")
        with gr.Column(scale=1):
            sample = gr.Dropdown([(s.description, s.name) for s in SAMPLES.values()], value=DEFAULT_SAMPLE,
                                 label=t("sample"), elem_id="sample-choice")
            use_sample = gr.Button(t("use_sample"), elem_id="use-sample")
    message = gr.HTML(elem_id="data-message")
    with gr.Row():
        role_columns = [gr.Dropdown([], label=f"Column {i + 1}", elem_id=f"col-{i + 1}", allow_custom_value=True)
                        for i in range(MAX_ROLES)]
    with gr.Row():
        preview = gr.Dataframe(label=t("preview"), wrap=False, max_height=320, elem_id="data-preview")
        balance = gr.Plot(label=t("balance"), elem_id="class-balance")
    previews = [c for view in VIEWS.values() for c in view.build_preview()]  # e.g. a grid of images per class
    outputs = [data_state, preview, *role_columns, balance, task, *previews, message]  # the message last (API)
    with gr.Row():
        check = gr.Button(t("check_quality"), elem_id="data-quality-run")
        fixes = [gr.Button(title, visible=False, size="sm", elem_id=f"fix-{name.replace('_', '-')}")
                 for name, title in FIX_TITLES.items()]
    report = gr.HTML(elem_id="data-quality")

    def on_upload(path: str | None):
        """Read an uploaded table, detect its task and columns, and check it."""
        return analyse(ctx, path, Path(path).name) if path else (gr.skip(),) * len(outputs)

    def on_sample(name: str):
        """Load a sample dataset (and switch the task to the sample's)."""
        try:
            path = sample_path(name)
        except StudioError as exc:
            return (None, None, *(gr.skip(),) * MAX_ROLES, None, gr.skip(), *(gr.skip(),) * len(previews),
                    error_md(exc.message))
        return analyse(ctx, str(path), path.name, task=SAMPLES[name].task)

    def on_run_table(path: str, name: str, run_dir: str, kind: str):
        """A table made from a run (the Chat tab's preferences, the Monitor tab's reviewed rows) as the table to train
        on, with that run as the base model."""
        loaded = analyse(ctx, path, name, task=kind)
        return ({**loaded[0], "base_run": run_dir} if loaded[0] else loaded[0], *loaded[1:])

    def on_feedback(run_dir: str):
        """The Chat tab's preferences of a run as the table to train on, with that run as the base model."""
        return on_run_table(str(feedback_table(run_dir)), "chat-feedback.csv", run_dir, "preference")

    def on_change(state, kind, *chosen):
        """A column or the task changed: check the data again (columns are guessed anew for a new task)."""
        if not state:
            return (gr.skip(),) * len(outputs)
        roles = [r.name for r in get_task(kind).roles]
        columns = dict(zip(roles, chosen)) if state.get("task") == kind else None
        return analyse(ctx, state["path"], state["name"], columns, kind)

    def check_data(state):
        """Data-quality report of the loaded table: duplicates, conflicting labels, leakage, imbalance, lengths."""
        return quality_report(state, ctx)

    def fix_with(name: str):
        def fix(state):
            """Apply one safe fix to the loaded rows, load the result and check it again."""
            if not state:
                return (gr.skip(),) * len(outputs) + quality_report(state, ctx)
            try:
                spec = get_task(state["task"])
                fixed, done = apply_fix(spec.prepare(read_table(state["path"], ctx.limits), state["columns"]), name)
            except StudioError as exc:
                return (gr.skip(),) * (len(outputs) - 1) + (error_md(exc.message),) + quality_report(state, ctx)
            path = Path(tempfile.mkdtemp(prefix="sft-fixed-")) / f"{state['name']}.csv"
            write_csv_atomic(spec.to_frame(fixed), path)
            loaded = analyse(ctx, str(path), path.name, {r.name: r.name for r in spec.roles}, spec.name)
            checked = quality_report(loaded[0], ctx)
            return (*loaded, f"<p class='dq-fixed'>✔ {done}</p>" + checked[0], *checked[1:])
        return fix

    clear = dict(fn=lambda: ("", *(gr.update(visible=False) for _ in fixes)), outputs=[report, *fixes],
                 api_visibility="private")
    upload.upload(on_upload, upload, outputs, api_name="load_data").then(**clear)
    use_sample.click(on_sample, sample, outputs, api_name="load_sample").then(**clear)
    for control in (*role_columns, task):
        control.input(on_change, [data_state, task, *role_columns], outputs, api_visibility="private").then(**clear)
    check.click(check_data, data_state, [report, *fixes], api_name="check_data")
    for name, button in zip(FIX_TITLES, fixes):
        button.click(fix_with(name), data_state, [*outputs, report, *fixes], api_name=f"fix_{name}")
    return {"state": data_state, "on_sample": on_sample, "on_feedback": on_feedback, "on_run_table": on_run_table,
            "sample": sample,
            "outputs": outputs}
