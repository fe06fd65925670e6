"""Search settings (in the Train tab): tick settings and ranges, run an Optuna study whose trials train through the
job queue, watch the trials table, the best-so-far curve and Optuna's plots fill, then copy the best into the tab."""
from __future__ import annotations

import html
import itertools

import gradio as gr

from core.common.errors import StudioError
from core.models.registry import REGISTRY
from core.search import space as search_space
from core.search import study as search

from . import charts
from .context import AppContext, error_md, ok_md, viewer_of
from .strings import t
from .train_settings import LOCAL, page_settings, to_control

_ids = itertools.count(1)


def default_ranges(names: list[str]) -> str:
    """The ranges the ticked settings get unless edited, in the CLI's --range form, e.g. 'learning_rate=1e-05:0.001'."""
    def shown(name: str) -> str:
        param = search_space.PARAMS[name]
        joiner = "|" if param.kind == "choice" else ":"
        return f"{name}={joiner.join(str(v) for v in param.default)}"
    return "; ".join(shown(n) for n in names if search_space.PARAMS[n].default)


def trials_table(results: list[search.TrialResult], metric: str) -> str:
    """The trials as an HTML table: number, state (pruned at which step), settings, metric, seconds, run."""
    heads = ["trial", "state", "settings", metric, "seconds", "run", "note"]
    rows = "".join(
        f"<tr data-state='{r.state}'>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            r.number, r.state + (f" at step {r.pruned_at}" if r.pruned_at else ""), search_space.shown_params(r.params),
            "" if r.value is None else f"{r.value:.4f}", "" if r.seconds is None else f"{r.seconds:.0f}",
            r.run_id or "", r.message[:120])) + "</tr>" for r in results)
    return (f"<table class='sft-trials'><thead><tr>{''.join(f'<th>{h}</th>' for h in heads)}</tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def build(ctx: AppContext, data_state: gr.State, user: gr.BrowserState, train: dict) -> None:
    controls, names = train["controls"], list(train["controls"])
    search_id = gr.BrowserState(None, storage_key="sft_studio_search")
    seen = gr.State({})
    with gr.Accordion(t("search"), open=False, elem_id="search-panel"):
        with gr.Row():
            ticked = gr.CheckboxGroup([(n.replace("_", " "), n) for n in search_space.PARAMS], value=list(search_space.DEFAULT_SEARCH),
                                      label=t("search_params"), elem_id="search-params")
            ranges = gr.Textbox(default_ranges(list(search_space.DEFAULT_SEARCH)), label=t("search_ranges"),
                                info=t("search_ranges_info"), elem_id="search-ranges")
        with gr.Row():
            trials = gr.Number(6, precision=0, minimum=1, label=t("search_trials"), elem_id="search-trial-count")
            budget = gr.Number(0, minimum=0, label=t("search_budget"), info=t("search_budget_info"),
                               elem_id="search-budget")
            pruner = gr.Radio(list(search_space.PRUNERS), value="median", label=t("search_pruner"), elem_id="search-pruner")
        with gr.Row():
            start = gr.Button(t("search_start"), variant="primary", elem_id="search-start")
            stop = gr.Button(t("search_stop"), variant="stop", interactive=False, elem_id="search-stop")
            use_best = gr.Button(t("search_use_best"), interactive=False, elem_id="search-use-best")
        message = gr.HTML(elem_id="search-message")
        table = gr.HTML(elem_id="search-trials")
        with gr.Row():
            best_curve = gr.Plot(label=t("search_best_curve"), elem_id="search-best-curve")
            importance = gr.Plot(label=t("search_importance"), elem_id="search-importance")
        with gr.Row():
            parallel = gr.Plot(label=t("search_parallel"), elem_id="search-parallel")
            slices = gr.Plot(label=t("search_slice"), elem_id="search-slice")
    timer = gr.Timer(1.0)

    ticked.change(lambda chosen: default_ranges(chosen), ticked, ranges, api_visibility="private")

    def on_start(state, current, browser_id, model_key, path, chosen, range_text, n_trials, minutes, pruner_name,
                 request: gr.Request, *values):
        run = ctx.searches.get(current)
        if run is not None and not run.done:
            return gr.skip(), error_md("A search from this page is still going; stop it first.")
        if not state:
            return gr.skip(), error_md("Load data first: upload a file or pick a sample in the Data tab.")
        try:
            settings = page_settings(state, model_key, path, names, values)
            ranges_given = [item for item in range_text.replace("\n", ";").split(";") if item.strip()]
            space = {name: bounds for name, bounds in search_space.parse_space(",".join(chosen or []), ranges_given).items()
                     if name in (chosen or [])}
            wanted = search_space.SearchSettings(space, int(n_trials or 0), float(minutes) * 60 if minutes else None,
                                           int(settings.get("seed", 42)), pruner_name)
            record, study = search.create_study(state["path"], settings, state["columns"], wanted, ctx.store.root)
        except StudioError as exc:
            return gr.skip(), error_md(exc.message)
        key = f"search-{next(_ids)}"
        ctx.speeds.stop()  # a speed test beside the trials would slow them
        ctx.searches[key] = search.SearchRun(record, study, ctx.store, ctx.queue,
                                             viewer_of(request, browser_id)).start()
        return key, ok_md(f"Study <code>{html.escape(record.name)}</code> started: {record.search.trials} trials; "
                          f"each is a run in the Runs tab and shows its live curve above.")

    def on_stop(current):
        run = ctx.searches.get(current)
        if run is not None:
            run.stop()

    def on_tick(current, last_seen, job):
        run = ctx.searches.get(current)
        if run is None:
            return (gr.skip(),) * 11
        results = search.results(run.study)
        finished = [(r.number, r.value) for r in results if r.state == "complete"]
        key = (current, tuple((r.number, r.state) for r in results), run.done, run.current_job)
        if key == last_seen.get("key"):
            return (gr.skip(),) * 11
        if len(finished) == last_seen.get("complete"):
            figures = [gr.skip()] * 3
        else:  # Optuna's plots need two complete trials
            figures = charts.study_figures(run.study) if len(finished) >= 2 else [None] * 3
        best = search.best(run.study)
        record = run.record
        if run.done:
            note = (error_md(html.escape(run.error)) if run.error else
                    ok_md(f"Search finished: best trial {best.number}, {record.metric} {best.value:.4f} "
                          f"({html.escape(search_space.shown_params(best.params))}), run <code>{best.run_id}</code>. "
                          "Press “Use the best” to copy its settings.") if best else error_md("No trial completed."))
        else:
            note = ok_md(f"Searching: {sum(r.state != 'running' for r in results)} of {record.search.trials} trials "
                         f"done{f'; best so far {best.value:.4f} (trial {best.number})' if best else ''}.")
        follow = run.current_job if run.current_job and run.current_job != job else gr.skip()
        return ({"key": key, "complete": len(finished)}, note, trials_table(results, record.metric),
                charts.best_so_far(finished, record.metric, record.greater_is_better), *figures,
                gr.update(interactive=run.done), gr.update(interactive=not run.done),
                gr.update(interactive=best is not None), follow)

    def on_use_best(current):
        """Copy the best trial's settings (and the study's fixed ones, e.g. its evaluation interval) into the tab."""
        run = ctx.searches.get(current)
        best = search.best(run.study) if run else None
        if best is None:
            return (gr.skip(),) * (len(names) + 2) + (error_md("No trial has completed yet."),)
        chosen = {**run.record.settings, **best.params}
        updates = [gr.update(value=to_control(n, chosen[n])) if n in chosen else gr.skip()
                   for n in names]
        note = ok_md(f"Trial {best.number}'s settings are in the Train tab ({html.escape(search_space.shown_params(best.params))}); "
                     f"its model is the run <code>{best.run_id}</code> (Evaluate, Predict, Runs).")
        registered = chosen["base_model"] in REGISTRY
        return (*updates, gr.update(value=chosen["base_model"] if registered else LOCAL),
                gr.skip() if registered else gr.update(value=chosen["base_model"]), note)

    start.click(on_start, [data_state, search_id, user, train["model"], train["local_path"], ticked, ranges, trials,
                           budget, pruner, *controls.values()], [search_id, message], api_visibility="private")
    stop.click(on_stop, search_id, None, api_visibility="private")
    timer.tick(on_tick, [search_id, seen, train["job_id"]],
               [seen, message, table, best_curve, importance, parallel, slices, start, stop, use_best, train["job_id"]],
               concurrency_limit=None, show_progress="hidden", api_visibility="private")
    use_best.click(on_use_best, search_id, [*controls.values(), train["model"], train["local_path"], message],
                   api_visibility="private")
