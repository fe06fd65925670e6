"""The Monitor tab's Compare and promote panel: a new run (e.g. trained on from the served one with the reviewed rows)
and the served run predict the same held-out rows (the served run's validation rows and the reviewed rows held out
from the training table); Promote swaps the new run into the running server, offered only when it is not worse."""
from __future__ import annotations

import html
from pathlib import Path

import gradio as gr

from core.common.errors import StudioError
from core.deploy.held_out_check import compare_held_out
from core.deploy.promote import promote_on_server
from core.insight.held_out import HeldOutReport

from .context import AppContext, error_md, ok_md, viewer_of
from .strings import t

NOT_WORSE = "not worse"


def report_html(report: HeldOutReport) -> str:
    """Each metric on each set of rows, the difference with its 95% interval, and the verdict."""
    rows = "".join(
        f"<tr data-state='{'ok' if m.verdict == NOT_WORSE else 'fail'}'><td>{html.escape(rows.rows)} "
        f"({rows.count:,})</td><td>{html.escape(m.metric)}</td><td>{m.served:.3f}</td><td>{m.new:.3f}</td>"
        f"<td>{m.difference:+.3f} ({m.low:+.3f} to {m.high:+.3f})</td><td>{m.verdict}</td></tr>"
        for rows in report.comparisons for m in rows.metrics)
    first = report.comparisons[0].metrics[0]
    said = (f"The new run is not worse ({first.metric} {first.difference:+.3f}, 95% interval {first.low:+.3f} to "
            f"{first.high:+.3f}): it can be promoted." if report.verdict == NOT_WORSE else
            f"The new run is worse ({first.metric} {first.difference:+.3f}, 95% interval {first.low:+.3f} to "
            f"{first.high:+.3f}): keep the served one.")
    box = ok_md(said) if report.verdict == NOT_WORSE else error_md(said)
    return (f"<div id='promote-verdict' data-verdict='{report.verdict}'>{box}</div><table class='sft-trials'><thead>"
            "<tr><th>rows</th><th>metric</th><th>served</th><th>new</th><th>new - served (95%)</th><th>verdict</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>")


def held_out_of(files) -> str | None:
    """The held-out file among the review panel's files (the training table and the held-out rows)."""
    return next((str(f) for f in files or [] if str(f).endswith("_held_out.csv")), None)


def build(ctx: AppContext, served: gr.Dropdown, review_files: gr.File, user: gr.BrowserState) -> None:
    """The panel; ``served`` is the Monitor tab's run, ``review_files`` the review panel's table files."""
    with gr.Accordion(t("promote_title"), open=False, elem_id="promote-panel") as panel:
        with gr.Row():
            new_run = gr.Dropdown([], label=t("promote_new_run"), elem_id="promote-new-run", scale=3)
            held_out = gr.File(label=t("promote_held_out"), file_types=[".csv"], elem_id="promote-held-out", scale=2)
        compare = gr.Button(t("promote_compare"), elem_id="promote-compare")
        report = gr.HTML(elem_id="promote-report")
        with gr.Row():
            server = gr.Textbox("http://127.0.0.1:8000", label=t("promote_server"), elem_id="promote-server", scale=3)
            token = gr.Textbox(label=t("promote_token"), type="password", elem_id="promote-token", scale=2)
            promote = gr.Button(t("promote_button"), variant="primary", interactive=False, elem_id="promote-button",
                                scale=1)
        message = gr.HTML(elem_id="promote-message")

    def candidates(run_id: str | None, browser_id: str | None = None, request: gr.Request = None):
        """The viewer's other runs of the served run's task, newest first."""
        viewer = viewer_of(request, browser_id)
        runs = {r.run_id: r for r in ctx.runs_with_model(viewer)}
        task = runs[run_id].task if run_id in runs else None
        ids = [i for i, r in runs.items() if i != run_id and r.task == task]
        return gr.update(choices=ids, value=ids[0] if ids else None), gr.update(interactive=False), ""

    def check(run_id, new_id, extra, browser_id=None, request: gr.Request = None):
        if not run_id or not new_id:
            return error_md("Pick the served run above and a new run to compare it with."), gr.update(interactive=False)
        viewer = viewer_of(request, browser_id)
        try:
            found = compare_held_out(ctx.store.path_of(run_id, viewer), ctx.store.path_of(new_id, viewer),
                                     Path(extra) if extra else None)
        except StudioError as exc:
            return error_md(exc.message), gr.update(interactive=False)
        return report_html(found), gr.update(interactive=found.verdict == NOT_WORSE)

    def swap(url, secret, new_id, browser_id=None, request: gr.Request = None):
        if not new_id:
            return error_md("Pick the new run to promote.")
        try:
            run = ctx.store.path_of(new_id, viewer_of(request, browser_id))
            said = promote_on_server(url, run, token=secret or None)
        except StudioError as exc:
            return error_md(exc.message)
        return ok_md(html.escape(said))

    for listed in (served.change, panel.expand):  # runs that finished since are listed when the panel opens
        listed(candidates, [served, user], [new_run, promote, report], api_visibility="private")
    review_files.change(held_out_of, review_files, held_out, api_visibility="private")
    new_run.change(lambda: gr.update(interactive=False), None, promote, api_visibility="private")
    compare.click(check, [served, new_run, held_out, user], [report, promote], api_visibility="private")
    promote.click(swap, [server, token, new_run, user], message, api_visibility="private")
