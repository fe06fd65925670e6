"""Monitor tab: a served model's traffic against its validation data: drift checks and a verdict, traffic and
latency, the class mix (or scores) now vs then, accuracy on feedback, a training table made from feedback, and the
review queue (ui/review_panel.py)."""
from __future__ import annotations

import html
import tempfile
from pathlib import Path

import gradio as gr

from core.common.errors import StudioError
from core.deploy.monitoring.drift import ALPHA, PSI_DRIFT
from core.deploy.monitoring.report import open_log
from core.runs.run_folder import RunFolder

from . import charts, promote_panel, review_panel
from .context import AppContext, error_md, ok_md, viewer_of
from .strings import t


def monitored_runs(ctx: AppContext, viewer: str | None) -> list[str]:
    """The viewer's runs that have been served with the monitor (their folder holds a request log)."""
    return [r.run_id for r in ctx.store.list(viewer) if (ctx.store.root / r.run_id / RunFolder.MONITOR_DB).is_file()]


def summary_html(found: dict) -> str:
    verdict = html.escape(found["verdict"])
    box = error_md(verdict) if found["drifted"] else ok_md(verdict)
    latency, feedback, reference = found["latency_ms"], found["feedback"], found["reference"]
    parts = [f"{found['window']:,} predictions"]
    if latency["p50"] is not None:
        parts.append(f"latency p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms")
    if feedback["value"] is not None:
        parts.append(f"{feedback['metric']} {feedback['value']:.3f} on {feedback['labelled']:,} with feedback")
    if reference["metric"]:
        parts.append(f"validation {reference['metric']['name']} {reference['metric']['value']:.3f} "
                     f"on {reference['rows']:,} rows")
    return f"<div id='monitor-state' data-drifted='{str(found['drifted']).lower()}'>{box}</div><p>{' · '.join(parts)}</p>"


def checks_html(checks: list[dict]) -> str:
    if not checks:
        return ""
    rows = "".join(
        f"<tr data-state='{'fail' if c['drifted'] else 'ok'}'><td>{html.escape(c['name'])}</td><td>{c['test']}</td>"
        f"<td>{c['p_value']:.2g}</td><td>{c['psi']:.3f}</td><td>{'drifted (' + c['severity'] + ')' if c['drifted'] else 'ok'}"
        f"</td><td>{html.escape(c['detail'])}</td></tr>" for c in checks)
    return (f"<table class='sft-trials' id='monitor-checks-table'><thead><tr><th>feature</th><th>test</th><th>p-value "
            f"(&lt; {ALPHA:g})</th><th>PSI (≥ {PSI_DRIFT:g})</th><th>state</th><th>what moved</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def build(ctx: AppContext, user: gr.BrowserState) -> dict:
    with gr.Row():
        run = gr.Dropdown([], label=t("monitor_run"), elem_id="monitor-run", scale=3, allow_custom_value=True)
        database = gr.Textbox(label=t("monitor_db"), placeholder="sqlite:////path/monitor.db, postgresql://…",
                              elem_id="monitor-db", scale=3)
        window = gr.Number(500, label=t("monitor_window"), precision=0, minimum=1, elem_id="monitor-window", scale=1)
        refresh = gr.Button(t("refresh"), variant="primary", elem_id="monitor-refresh", scale=1)
    summary = gr.HTML(elem_id="monitor-summary")
    checks = gr.HTML(elem_id="monitor-checks")
    with gr.Row():
        traffic = gr.Plot(label=t("monitor_traffic"), elem_id="monitor-traffic")
        mix = gr.Plot(label=t("monitor_mix"), elem_id="monitor-mix")
    with gr.Row():
        make_table = gr.Button(t("monitor_make_table"), elem_id="monitor-make-table")
        table_file = gr.File(label=t("monitor_table_file"), elem_id="monitor-table-file")
    table_message = gr.HTML(elem_id="monitor-table-message")

    def log_of(run_id: str | None, url: str, browser_id: str | None, request: gr.Request | None):
        if url and url.strip():
            return open_log(url.strip())
        if not run_id:
            raise StudioError("Pick a served run or give a request-log database.")
        return open_log(ctx.store.path_of(run_id, viewer_of(request, browser_id)) / RunFolder.MONITOR_DB)

    def choose(selected: str | None, browser_id: str | None = None, request: gr.Request = None):
        ids = monitored_runs(ctx, viewer_of(request, browser_id))
        return gr.update(choices=ids, value=selected if selected in ids else (ids[0] if ids else None))

    def show(run_id, url, last, browser_id=None, request: gr.Request = None):
        try:
            view = log_of(run_id, url, browser_id, request)
            found, frame = view.look(int(last or 500))
        except StudioError as exc:
            return error_md(exc.message), "", None, None
        if not view.reference.kind.outcome_name:  # a score: its distribution, not a mix of categories
            figure = charts.monitor_scores(view.reference.numbers.get("value", []), frame["value"].dropna().tolist())
        else:
            figure = charts.monitor_mix(found["outcome_mix"]["validation"], found["outcome_mix"]["window"])
        return summary_html(found), checks_html(found["checks"]), charts.monitor_traffic(frame), figure

    def make(run_id, url, browser_id=None, request: gr.Request = None):
        try:
            table, added = log_of(run_id, url, browser_id, request).training_table()
        except StudioError as exc:
            return None, error_md(exc.message)
        path = Path(tempfile.mkdtemp(prefix="sft-monitor-")) / "training_table_with_feedback.csv"
        table.to_csv(path, index=False)
        return str(path), ok_md(f"{len(table):,} rows: the run's {len(table) - added:,} and {added:,} from feedback. "
                                "Load the file in the Data tab to train on it.")

    refresh.click(show, [run, database, window, user], [summary, checks, traffic, mix], api_visibility="private")
    make_table.click(make, [run, database, user], [table_file, table_message], api_visibility="private")
    review_files, train_on, review_message = review_panel.build(log_of, [run, database], user)
    promote_panel.build(ctx, run, review_files, user)
    return {"run": run, "choose": choose, "review_files": review_files, "train_on": train_on,
            "review_message": review_message}
