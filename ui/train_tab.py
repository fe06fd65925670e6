"""Train tab: model, presets and sliders; Start/Stop; live curve, progress and metric cards."""
from __future__ import annotations

import html
import time

import gradio as gr

from core.common.errors import StudioError
from core.insight.verdict import judge
from core.models.registry import DEFAULT_MODEL, REGISTRY
from core.runs import events as ev
from core.runs.config import DEFAULT_TASK, PRESETS, TrainConfig
from core.tasks import check_config, get_task
from core.tasks.base import Task
from core.train import service
from core.train.base_run import runs_to_train_on
from core.train.estimate import estimate as estimate_run
from core.train.parallel.launch import describe_devices, max_processes
from core.train.render import cross_validation_line, event_line
from core.train.few_shot import few_shot_mode
from core.train.schedule import expected_train_rows

from . import charts
from .context import AppContext, error_md, ok_md, viewer_of
from .strings import t
from .train_settings import (
    LOCAL,
    PRESET_FIELDS,
    SPEED_FIELDS,
    SUGGESTED_FIELDS,
    build_section,
    page_settings,
    preset_values,
)

CURVE_REFRESH_S = 5.0  # redrawing the plot costs the browser CPU that training needs; text updates stay live


def _fmt_time(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 60}:{seconds % 60:02d}"


def progress_html(events: list[ev.Event], position: int) -> str:
    if position:
        return f"<div class='sft-progress'>Waiting in the training queue: position {position}</div>"
    steps = [e for e in events if isinstance(e, ev.Step)]
    if not steps:
        status = next((e.message for e in reversed(events) if isinstance(e, ev.Status)), "Starting…")
        return f"<div class='sft-progress'>{status}</div>"
    s = steps[-1]
    pct = 100 * s.step / s.total_steps
    return (f"<div class='sft-progress'><div class='sft-bar'><div style='width:{pct:.1f}%'></div></div>"
            f"<span id='train-progress-text'>step {s.step}/{s.total_steps} · epoch {s.epoch:.2f} · "
            f"loss {s.loss:.4f} · {s.samples_per_s:.1f} samples/s · ETA {_fmt_time(s.eta_s)}</span></div>")


def latest_run(events: list[ev.Event]) -> list[ev.Event]:
    """The events of the run training now: a cross-validation trains one run per fold, each from its Started."""
    starts = [i for i, e in enumerate(events) if isinstance(e, ev.Started)]
    return events[starts[-1]:] if len(starts) > 1 else events


def best_evaluation(events: list[ev.Event]) -> tuple[Task, ev.Evaluation | None, int]:
    """The run's task, its best evaluation by the task's primary metric, and how many evaluations ran."""
    started = next((e for e in events if isinstance(e, ev.Started)), None)
    task = get_task(started.task if started else DEFAULT_TASK)
    evals = [e for e in events if isinstance(e, ev.Evaluation)]
    best = next((e for e in reversed(evals) if e.is_best), None)
    return task, best, len(evals)


def baselines_html(events: list[ev.Event]) -> str:
    """The run's schedule and what it must beat: the trivial and the classical baselines (fitted beside the
    first steps)."""
    started = next((e for e in events if isinstance(e, ev.Started)), None)
    if started is None:
        return ""
    task = get_task(started.task)
    fitted = next((e for e in reversed(events) if isinstance(e, ev.Baselines)), None)
    line = ((event_line(task, fitted) or "") if fitted  # the same line the command line prints
            else f"fitting the classical baseline ({task.classical_name})…" if task.classical_name else "")
    schedule = f"<div class='sft-note'>{html.escape(started.schedule)}</div>" if started.schedule else ""
    return (f"<div class='sft-note' id='train-baselines'>{html.escape(line)}</div>" if line else "") + schedule


def cards_html(events: list[ev.Event]) -> str:
    task, best, count = best_evaluation(events)
    if best is None:
        return baselines_html(events)
    cards = [(name, best.metrics[key]) for key, name in task.view.cards if key in best.metrics] + [("val loss", best.loss)]
    html_cards = "<div class='sft-cards'>" + "".join(
        f"<div class='sft-card'><div class='v'>{v:.3f}</div><div class='k'>{k}</div></div>" for k, v in cards
    ) + f"</div><div class='sft-note'>best of {count} evaluation(s), step {best.step}</div>"
    return html_cards + baselines_html(events) + samples_table(best.metrics.get("samples", []))


def samples_table(samples: list[dict]) -> str:
    if not samples:
        return ""
    rows = "".join(f"<tr><td>{html.escape(s['prompt'])}</td><td>{html.escape(s['generated'])}</td>"
                   f"<td>{html.escape(s['reference'])}</td></tr>" for s in samples)
    return f"<table class='sft-samples'><tr><th>prompt</th><th>generated</th><th>reference</th></tr>{rows}</table>"


def outcome_html(events: list[ev.Event]) -> str:
    last = events[-1] if events else None
    if isinstance(last, ev.Finished):
        task, run = best_evaluation(events)[0], last.run_dir.split("/")[-1]
        m, baseline = last.metrics, last.metrics.get("baseline")
        beat = f" ({baseline['name']} baseline: {task.headline(baseline)})" if baseline else ""
        next_step = "talk to it in the Chat tab" if task.generative else "open Evaluate or Predict"
        verdict = judge(task, m)
        scored = (html.escape(cross_validation_line(task, m["cross_validation"])) if m.get("cross_validation")
                  else task.headline(m))
        finished = (f"✔ Finished in {last.train_seconds:.0f} s ({last.samples_per_s:.1f} samples/s): "
                    f"{scored}{beat}. Saved as <code>{run}</code>; {next_step}.")
        said = f"<span id='train-verdict'>{html.escape(verdict.text)}</span>"
        return ok_md(finished) + ((error_md if verdict.beats is False else ok_md)(said) if verdict.text else "")
    if isinstance(last, ev.Cancelled):
        kept = f" The best model so far is kept in <code>{last.run_dir.split('/')[-1]}</code>." if last.run_dir else ""
        return ok_md(f"■ Stopped.{kept}")
    if isinstance(last, ev.Failed):
        return error_md(last.message)
    started = next((e for e in events if isinstance(e, ev.Started)), None)
    if started and started.warnings:
        return error_md("<br>".join(started.warnings))
    return ""


def model_choices(ctx: AppContext, task: str, viewer: str | None) -> list[tuple[str, str]]:
    """The base models offered: the registered ones, the viewer's chat runs where the task builds on them, the
    viewer's finished runs of the task to train on from (a run's folder is the base model), and a local folder."""
    runs = ctx.runs_with_model(viewer, chat=True) if get_task(task).builds_on_chat_runs else []
    return ([(m.label, k) for k, m in REGISTRY.items()] + [(f"{t('run_as_base')} {r.run_id}", str(r.path)) for r in runs]
            + [(f"{t('train_on_run')} {r.run_id}", str(r.path)) for r in runs_to_train_on(ctx.store, task, viewer)]
            + [(LOCAL, LOCAL)])


def base_model_update(ctx: AppContext, state: dict | None, viewer: str | None):
    """After the Data tab read a table: the task's base-model choices, with the run the table came from (Chat tab
    feedback) or the newest chat run selected where the task builds on one, else the model suggested for the data."""
    if not state or not state.get("model"):
        return gr.skip()
    task = state.get("task", DEFAULT_TASK)
    choices = model_choices(ctx, task, viewer)
    runs = [value for _, value in choices if value not in REGISTRY and value != LOCAL]
    newest = runs[0] if runs and get_task(task).builds_on_chat_runs else state["model"]  # train on from a run: asked
    chosen = state.get("base_run") if state.get("base_run") in runs else newest
    return gr.update(choices=choices, value=chosen)


def build(ctx: AppContext, data_state: gr.State, user: gr.BrowserState) -> dict:
    job_id = gr.BrowserState(None, storage_key="sft_studio_job")
    seen = gr.State({})
    controls: dict[str, gr.components.Component] = {}  # TrainConfig field -> its control; read by name
    with gr.Row():
        model = gr.Dropdown(model_choices(ctx, DEFAULT_TASK, None), value=DEFAULT_MODEL, label=t("base_model"),
                            info=t("base_model_info"), elem_id="base-model", scale=2)
        local_path = gr.Textbox(label=t("local_path"), visible=False, elem_id="local-path")
        preset = gr.Radio(list(PRESETS), value="Balanced", label=t("preset"), info=t("preset_info"), elem_id="preset",
                          scale=3)
    schedule = gr.HTML(elem_id="train-schedule")
    build_section("basic", controls)
    with gr.Accordion(t("advanced"), open=False, elem_id="train-advanced") as advanced:
        gr.Markdown(t("advanced_info"), elem_id="advanced-info")
        gr.Markdown(f"<small>{describe_devices()}</small>", elem_id="devices")
        build_section("advanced", controls, {"processes": max(2, max_processes())})
        with gr.Accordion(t("lora_section"), open=False):
            build_section("lora", controls)
    names = list(controls)
    with gr.Row(equal_height=True):
        start = gr.Button(t("start"), variant="primary", elem_id="start-train", scale=1)
        stop = gr.Button(t("stop"), variant="stop", interactive=False, elem_id="stop-train", scale=1)
        estimate = gr.HTML(elem_id="train-estimate", scale=3)
    estimate_timer = gr.Timer(2.0, active=False)
    progress = gr.HTML(elem_id="train-progress")
    outcome = gr.HTML(elem_id="train-outcome")
    cards = gr.HTML(elem_id="metric-cards")
    curve = gr.Plot(label=t("curve"), elem_id="loss-curve")
    timer = gr.Timer(1.0)

    model.change(lambda m: gr.update(visible=m == LOCAL), model, local_path, api_visibility="private")
    preset.change(preset_values, [preset, data_state], [controls[name] for name in PRESET_FIELDS],
                  api_visibility="private")
    suggested_for = gr.State(DEFAULT_TASK)  # the task whose suggestions the controls last took

    def suggested_values(chosen: str, state: dict | None, applied: str):
        """New data: a control the new task suggests a value for takes it; one the previous task had set goes back
        to the preset's value; the others keep what the person chose."""
        task = (state or {}).get("task", DEFAULT_TASK)
        touched = set(get_task(task).suggested) | set(get_task(applied).suggested)
        values = preset_values(chosen, state, SUGGESTED_FIELDS)
        return (*(value if name in touched else gr.skip() for name, value in zip(SUGGESTED_FIELDS, values)), task)

    data_state.change(suggested_values, [preset, data_state, suggested_for],
                      [*(controls[name] for name in SUGGESTED_FIELDS), suggested_for], api_visibility="private")

    schedule_fields = ["epochs", "min_steps", "batch_size", "val_fraction", "processes", "few_shot"]

    def show_schedule(state, model_key, path, *values):
        """The epochs and optimizer steps this table will get (the few-shot mode's pairs where it is chosen, and
        why), before Start."""
        if not state or not state.get("rows"):
            return ""
        try:
            config = TrainConfig.from_dict(page_settings(state, model_key, path, schedule_fields, values))
            plan = few_shot_mode(config, ctx.table(state)).schedule(
                config, expected_train_rows(config, state["rows"]), config.processes)
        except (StudioError, OSError, TypeError, ValueError):
            return ""
        return f"<div class='sft-note'>{html.escape(plan.describe())}</div>"

    def show_estimate(state, model_key, path, *values):
        """About how long the run will take here and the memory it needs, from the settings that change it (the
        others keep their defaults); measures this machine's speed first (a short run in the background, once per
        model and task; the timer asks again until it is known)."""
        idle = gr.Timer(active=False)
        if not state or not state.get("rows"):
            return "", idle
        try:
            config = check_config(TrainConfig.from_dict(page_settings(state, model_key, path, SPEED_FIELDS, values)))
            data = ctx.table(state)
        except (StudioError, OSError, TypeError, ValueError):
            return "", idle
        speed = ctx.speeds.get(config)
        if speed is None:
            if (failure := ctx.speeds.failure(config)):
                return f"<div class='sft-note'>{html.escape(failure)}</div>", idle
            if ctx.queue.busy and not ctx.speeds.measuring(config):  # a test run beside training would time both wrong
                return "<div class='sft-note'>The time estimate waits until the current run ends.</div>", gr.Timer(active=True)
            ctx.speeds.measure_later(config, data)
            return ("<div class='sft-note' id='estimate-measuring'>Measuring this machine's speed with a short test "
                    "run (once per model and task)…</div>"), gr.Timer(active=True)
        try:
            said = estimate_run(config, data, speed, ctx.speeds.correction(config))
        except (StudioError, OSError, ValueError):
            return "", idle
        return (f"<div class='sft-note' id='estimate-text' data-seconds='{said.seconds:.0f}'>Estimated: "
                f"{html.escape(said.describe())}</div>"), idle

    estimate_inputs = [data_state, model, local_path, *(controls[name] for name in SPEED_FIELDS)]
    gr.on([c.change for c in estimate_inputs] + [estimate_timer.tick], show_estimate, estimate_inputs,
          [estimate, estimate_timer], api_visibility="private", show_progress="hidden", trigger_mode="always_last")

    schedule_inputs = [data_state, model, local_path] + [controls[name] for name in schedule_fields]
    for control in schedule_inputs:
        control.change(show_schedule, schedule_inputs, schedule, api_visibility="private", show_progress="hidden")

    def on_start(state, current, browser_id, model_key, path, request: gr.Request, *values):
        active = ctx.queue.get(current)
        if active is not None and not active.done:
            return gr.skip(), error_md("A training run from this page is still going; stop it first.")
        if not state:
            return gr.skip(), error_md("Load data first: upload a file or pick a sample in the Data tab.")
        try:
            plan = service.plan_run(state["path"], page_settings(state, model_key, path, names, values), state["columns"],
                                    data_name=state["name"],
                                    limits=ctx.limits)
        except StudioError as exc:
            return gr.skip(), error_md(exc.message)
        ctx.speeds.stop()
        job = service.make_job(plan, ctx.store, owner=viewer_of(request, browser_id))
        ctx.speeds.follow(job, plan.config, plan.data)
        return ctx.queue.submit(job), ""

    def on_stop(current):
        if current:
            ctx.queue.cancel(current)

    def on_tick(current, last_seen):
        job = ctx.queue.get(current)
        if job is None:
            return (gr.skip(),) * 7
        events = latest_run(job.events.since(0))
        position = ctx.queue.position(current)
        key = f"{current}:{len(events)}:{position}"
        if key == last_seen.get("key"):
            return (gr.skip(),) * 7
        running, now = not job.done, time.monotonic()
        evaluations = sum(isinstance(e, ev.Evaluation) for e in events)
        stepped = any(isinstance(e, ev.Step) for e in events)
        first_point = stepped and last_seen.get("stepped") != current  # a job's first loss point is drawn at once
        redraw = (not running or first_point or (current, evaluations) != last_seen.get("curve")
                  or now - last_seen.get("drawn_at", 0.0) >= CURVE_REFRESH_S)
        seen_now = ({"key": key, "curve": (current, evaluations), "drawn_at": now,
                     "stepped": current if stepped else None} if redraw else {**last_seen, "key": key})
        return (seen_now, progress_html(events, position), cards_html(events),
                charts.training_curve(events) if redraw else gr.skip(),
                outcome_html(events), gr.update(interactive=not running), gr.update(interactive=running))

    start.click(on_start, [data_state, job_id, user, model, local_path, *controls.values()], [job_id, outcome],
                api_visibility="private", show_progress="hidden")  # the progress line says "Starting…"
    stop.click(on_stop, job_id, None, api_visibility="private")
    timer.tick(on_tick, [job_id, seen], [seen, progress, cards, curve, outcome, start, stop],
               concurrency_limit=None, show_progress="hidden", api_visibility="private")
    advanced_open = gr.BrowserState(False, storage_key="sft_studio_advanced_open")
    advanced.expand(lambda: True, None, advanced_open, api_visibility="private")
    advanced.collapse(lambda: False, None, advanced_open, api_visibility="private")
    return {"job_id": job_id, "model": model, "local_path": local_path, "controls": controls,
            "advanced": advanced, "advanced_open": advanced_open}
