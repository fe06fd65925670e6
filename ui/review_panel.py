"""The Monitor tab's Review panel: one served prediction at a time (text, the model's answer and confidence, why it
was chosen, the classical model's answer where it differs), label choices, the accuracy on reviewed traffic, and a
training table made of the reviewed rows. Keys (assets/keys.js): 1-9 picks a label, Enter saves, S skips."""
from __future__ import annotations

import html
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import gradio as gr

from core.common.errors import StudioError
from core.deploy.monitoring.report import LogView
from core.deploy.monitoring.review import record_answers, review_accuracy, review_queue, reviewed_table

from .context import error_md, ok_md
from .strings import t

QUEUE_SIZE = 40


def item_html(items: list[dict], position: int) -> str:
    """The prediction at ``position`` of the loaded queue, or a note that the queue is done."""
    if position >= len(items):
        return ok_md("Nothing left to review here: load the queue again for more.") if items else ""
    item = items[position]
    classical = (f" · classical model: <b data-review-classical>{html.escape(item['classical'])}</b>"
                 if item["classical"] else "")
    texts = "".join(f"<blockquote>{html.escape(text)}</blockquote>" for text in item["inputs"].values())
    return (f"<div data-review-id='{html.escape(item['id'])}'><p>{position + 1} of {len(items)} · "
            f"<i>{html.escape(item['reason'])}</i></p>{texts}<p>model: <b data-review-label>"
            f"{html.escape(item['label'])}</b> ({item['confidence']:.0%}){classical}</p></div>")


def shown(items: list[dict], position: int, labels: list[str]):
    """The item's HTML and the label choices set to the model's answer."""
    current = items[position]["label"] if position < len(items) else None
    return item_html(items, position), gr.update(choices=labels, value=current)


def build(log_of: Callable[..., LogView], sources: list, user: gr.BrowserState) -> tuple[gr.File, gr.Button, gr.HTML]:
    """The panel; ``log_of(*sources, browser_id, request)`` opens the request log the tab has chosen. Returns the
    component holding the training table and the held-out rows it makes, the button that trains on from the served
    run with that table (the app wires it to the Data and Train tabs) and the panel's message."""
    with gr.Accordion(t("review_title"), open=False, elem_id="review-panel"):
        load = gr.Button(t("review_load"), elem_id="review-load")
        item = gr.HTML(elem_id="review-item")
        label = gr.Radio([], label=t("review_label"), elem_id="review-label")
        with gr.Row():
            save = gr.Button(t("review_save"), variant="primary", elem_id="review-save")
            skip = gr.Button(t("review_skip"), elem_id="review-skip")
        accuracy = gr.HTML(elem_id="review-accuracy")
        with gr.Row():
            make_table = gr.Button(t("review_make_table"), elem_id="review-make-table")
            table_files = gr.File(label=t("review_table_files"), file_count="multiple", interactive=False,
                                  elem_id="review-table-file")
        train_on = gr.Button(t("review_train_on"), variant="primary", elem_id="review-train-on")
        message = gr.HTML(elem_id="review-message")
    items, position, labels = gr.State([]), gr.State(0), gr.State([])

    def start(*args, request: gr.Request = None):
        try:
            queue = review_queue(log_of(*args, request), QUEUE_SIZE)
        except StudioError as exc:
            return [], 0, [], error_md(exc.message), gr.update(choices=[], value=None), ""
        found = [asdict(i) for i in queue.items]
        return (found, 0, queue.labels, *shown(found, 0, queue.labels),
                f"<p id='review-accuracy-line'>{html.escape(queue.accuracy.line())}</p>")

    def answer(found, at, names, chosen, *args, request: gr.Request = None):
        if at >= len(found) or not chosen:
            return at, *shown(found, at, names), gr.update()
        try:
            view = log_of(*args, request)
            record_answers(view, {found[at]["id"]: chosen})
            line = review_accuracy(view).line()
        except StudioError as exc:
            return at, error_md(exc.message), gr.update(), gr.update()
        return at + 1, *shown(found, at + 1, names), f"<p id='review-accuracy-line'>{html.escape(line)}</p>"

    def next_one(found, at, names):
        return min(at + 1, len(found)), *shown(found, min(at + 1, len(found)), names)

    def make(*args, request: gr.Request = None):
        try:
            written = reviewed_table(log_of(*args, request),
                                     Path(tempfile.mkdtemp(prefix="sft-review-")) / "training_table_reviewed.csv")
        except StudioError as exc:
            return None, error_md(exc.message)
        return [str(written.path), str(written.held_out_path)], ok_md(
            f"{written.rows:,} rows: the run's and {written.added:,} reviewed; {written.held_out:,} reviewed rows held "
            "out in the second file, to compare a new model with the served one. Load the first in the Data tab.")

    load.click(start, [*sources, user], [items, position, labels, item, label, accuracy], api_visibility="private")
    save.click(answer, [items, position, labels, label, *sources, user], [position, item, label, accuracy],
               api_visibility="private")
    skip.click(next_one, [items, position, labels], [position, item, label], api_visibility="private")
    make_table.click(make, [*sources, user], [table_files, message], api_visibility="private")
    return table_files, train_on, message
