"""Assemble the tabs into one Gradio Blocks app."""
from __future__ import annotations

import uuid
from pathlib import Path

import gradio as gr

from core.common.errors import StudioError
from core.models.registry import cache_root
from core.runs.run_folder import RunFolder

from . import api, chat_tab, data_tab, evaluate_tab, monitor_tab, predict_tab, runs_tab, search_panel, train_tab
from .context import AppContext, error_md, viewer_of
from .strings import I18N, t

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CSS = (ASSETS / "style.css").read_text(encoding="utf-8")
JS = (ASSETS / "keys.js").read_text(encoding="utf-8")


def build_app(ctx: AppContext | None = None) -> gr.Blocks:
    ctx = ctx or AppContext()
    with gr.Blocks(title="SFT Studio") as demo:
        user = gr.BrowserState(None, storage_key="sft_studio_user")
        gr.Markdown(t("title"), elem_id="title")
        with gr.Tabs() as tabs:
            with gr.Tab(t("tab_data"), id="data"):
                data = data_tab.build(ctx)
            with gr.Tab(t("tab_train"), id="train") as train_page:
                train = train_tab.build(ctx, data["state"], user)
                search_panel.build(ctx, data["state"], user, train)
            with gr.Tab(t("tab_evaluate"), id="evaluate") as evaluate_page:
                evaluate = evaluate_tab.build(ctx, user)
            with gr.Tab(t("tab_predict"), id="predict") as predict_page:
                predict = predict_tab.build(ctx, user)
            with gr.Tab(t("tab_chat"), id="chat") as chat_page:
                chat = chat_tab.build(ctx, user)
            with gr.Tab(t("tab_runs"), id="runs") as runs_page:
                runs = runs_tab.build(ctx, user)
            with gr.Tab(t("tab_monitor"), id="monitor") as monitor_page:
                monitor = monitor_tab.build(ctx, user)
        api.build(ctx)

        evaluate_page.select(evaluate["choose"], [evaluate["run"], user], evaluate["outputs"], api_visibility="private")
        predict_page.select(predict["choose"], [predict["run"], user], predict["outputs"], api_visibility="private")
        runs_page.select(runs["show"], [runs["run"], user], runs["outputs"], api_visibility="private")
        chat_page.select(chat["choose"], [chat["run"], user], chat["run"], api_visibility="private")
        monitor_page.select(monitor["choose"], [monitor["run"], user], monitor["run"], api_visibility="private")

        def to_training(load) -> tuple:
            """A table loaded in the Data tab by ``load()``, then the Train tab; or the reason it could not be."""
            try:
                return (*load(), "", gr.Tabs(selected="train"))
            except StudioError as exc:
                return (*(gr.skip(),) * len(data["outputs"]), error_md(exc.message), gr.skip())

        def train_on_feedback(run_id: str | None, browser_id: str | None = None, request: gr.Request = None):
            """Chat tab -> the run's preferences loaded in the Data tab, the run chosen as base model, Train tab."""
            return to_training(lambda: data["on_feedback"](chat["run_dir_of"](run_id, browser_id, request)))

        def train_on_reviewed(run_id: str | None, files, browser_id: str | None = None, request: gr.Request = None):
            """Monitor tab -> the reviewed-rows table loaded in the Data tab, the served run as base model, Train tab."""
            def load():
                table = next((str(f) for f in files or [] if not str(f).endswith("_held_out.csv")), None)
                if not run_id or not table:
                    raise StudioError("Make the training table from the reviewed rows first.")
                run_dir = ctx.store.path_of(run_id, viewer_of(request, browser_id))
                return data["on_run_table"](table, Path(table).name, str(run_dir), RunFolder(run_dir).config().task)
            return to_training(load)

        chat["train_feedback"].click(train_on_feedback, [chat["run"], user], [*data["outputs"], chat["message"], tabs],
                                     api_visibility="private")
        monitor["train_on"].click(train_on_reviewed, [monitor["run"], monitor["review_files"], user],
                                  [*data["outputs"], monitor["review_message"], tabs], api_visibility="private")

        def base_model_for(state: dict | None, browser_id: str | None = None, request: gr.Request = None):
            return train_tab.base_model_update(ctx, state, viewer_of(request, browser_id))

        data["state"].change(base_model_for, [data["state"], user], train["model"], api_visibility="private")

        def load_run(run_id: str, browser_id: str | None = None, request: gr.Request = None):
            return (*evaluate["choose"](run_id, browser_id, request), *predict["choose"](run_id, browser_id, request),
                    gr.Tabs(selected="predict"))

        runs["load"].click(load_run, [runs["run"], user], [*evaluate["outputs"], *predict["outputs"], tabs],
                           api_visibility="private")
        runs["resume"].click(runs["resume_run"], [runs["run"], user], [train["job_id"], runs["message"], tabs],
                             api_visibility="private")
        demo.load(lambda current: current or uuid.uuid4().hex, user, user, api_visibility="private")
        demo.load(data["on_sample"], data["sample"], data["outputs"], api_visibility="private")
        train_page.select(lambda was_open: gr.Accordion(open=bool(was_open)), train["advanced_open"],
                          train["advanced"], api_visibility="private")  # as the person left it, even after a reload
    return demo


def launch(demo: gr.Blocks, **kwargs) -> None:
    images = cache_root() / "images"  # unpacked zips of images and sound clips: shown in the Data, Evaluate and Predict tabs
    images.mkdir(parents=True, exist_ok=True)
    demo.queue(default_concurrency_limit=2).launch(css=CSS, js=JS, i18n=I18N, theme=gr.themes.Soft(),
                                                   allowed_paths=[str(images)], **kwargs)
