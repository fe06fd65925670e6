"""Chat tab: talk to a fine-tuned assistant run, streamed, side by side with its base model."""
from __future__ import annotations

import gradio as gr

from core.common.errors import StudioError
from core.common.foreground import person_waiting
from core.deploy.chat import load_chat_model
from core.deploy.chat_feedback import record_preference
from core.runs.run_folder import RunFolder

from .context import AppContext, error_md, ok_md, run_picker, viewer_of
from .strings import t


def text_of(content) -> str:
    """Chatbot messages come back either as a string or as a list of {"type": "text", "text": ...} parts."""
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))


def exchange(history: list, index: int) -> tuple[str, str]:
    """The user message before the answer at ``index`` and that answer."""
    prompt = next((text_of(m["content"]) for m in reversed(history[:index]) if m["role"] == "user"), "")
    return prompt, text_of(history[index]["content"])


def answer_at(history: list, index: int) -> str:
    return text_of(history[index]["content"]) if index < len(history) and history[index]["role"] == "assistant" else ""


def build(ctx: AppContext, user: gr.BrowserState) -> dict:
    run, refresh = run_picker(t("chat_run"), "chat-run")
    message = gr.HTML(elem_id="chat-message")
    with gr.Row():
        tuned = gr.Chatbot(label=t("chat_tuned"), height=380, feedback_options=("Like", "Dislike"), elem_id="chat-tuned")
        base = gr.Chatbot(label=t("chat_base"), height=380, feedback_options=("Like", "Dislike"), elem_id="chat-base")
    with gr.Row():
        text = gr.Textbox(label=t("chat_in"), scale=4, elem_id="chat-text")
        send = gr.Button(t("send"), variant="primary", scale=1, elem_id="chat-send")
    with gr.Row():
        temperature = gr.Slider(0, 1.5, value=0.7, step=0.05, label=t("temperature"), elem_id="chat-temperature")
        max_new = gr.Slider(8, 512, value=128, step=8, label=t("max_new_tokens"), elem_id="chat-max-new")
        compare = gr.Checkbox(True, label=t("compare"), elem_id="chat-compare")
        clear = gr.Button(t("clear"), elem_id="chat-clear")
    with gr.Row():
        better = gr.Textbox(label=t("better_answer"), info=t("better_answer_info"), scale=4, elem_id="chat-better")
        save_better = gr.Button(t("save_better"), scale=1, elem_id="chat-save-better")
        train_feedback = gr.Button(t("train_feedback"), scale=1, elem_id="chat-train-feedback")

    def chat(prompt: str, tuned_history: list, base_history: list, run_id: str | None, temp: float, max_tokens: int,
             with_base: bool = True, browser_id: str | None = None, request: gr.Request = None):
        """Stream the fine-tuned model's answer, then (optionally) the base model's answer to the same prompt; a
        short speed test in the background stops from Send to the last word (loading the models included)."""
        with person_waiting():
            yield from stream_answers(prompt, list(tuned_history or []), list(base_history or []), run_id, temp,
                                      max_tokens, with_base, viewer_of(request, browser_id))

    def stream_answers(prompt: str, tuned_history: list, base_history: list, run_id: str | None, temp: float,
                       max_tokens: int, with_base: bool, viewer: str):
        if not prompt or not prompt.strip():
            yield tuned_history, base_history, error_md("Type a message first."), gr.skip()
            return
        try:
            run_dir = ctx.store.path_of(run_id, viewer) if run_id else None
            if run_dir is None:
                raise StudioError("Train an assistant first (Data tab: task 'Assistant'), then pick it here.")
            model = load_chat_model(str(run_dir))
            base_model = RunFolder(run_dir).config().base_model
        except StudioError as exc:
            yield tuned_history, base_history, error_md(exc.message), gr.skip()
            return
        yield tuned_history, base_history, "", ""
        for history, source in [(tuned_history, model)] + ([(base_history, None)] if with_base else []):
            source = source or load_chat_model(base_model)
            messages = [{"role": m["role"], "content": text_of(m["content"])} for m in history
                        if m["role"] in ("user", "assistant")] + [{"role": "user", "content": prompt}]
            history += [{"role": "user", "content": prompt}, {"role": "assistant", "content": ""}]
            for reply in source.stream(messages, float(temp), int(max_tokens)):
                history[-1]["content"] = reply
                yield tuned_history, base_history, gr.skip(), gr.skip()  # a message given meanwhile stays until the end
        yield tuned_history, base_history, "", ""

    def choose(selected: str | None, browser_id: str | None = None, request: gr.Request = None):
        return ctx.pick_run(selected, viewer_of(request, browser_id), chat=True)[0]

    def run_dir_of(run_id: str | None, browser_id: str | None, request) -> str:
        run_dir = ctx.store.path_of(run_id, viewer_of(request, browser_id)) if run_id else None
        if run_dir is None:
            raise StudioError("Pick a chat run first.")
        return str(run_dir)

    def judged(side: str):
        def on_like(run_id: str | None, tuned_history: list, base_history: list, browser_id: str | None = None,
                    data: gr.LikeData = None, request: gr.Request = None):
            """A thumb on one answer: with the other column's answer to the same message, a preference pair."""
            mine, other = (tuned_history, base_history) if side == "tuned" else (base_history, tuned_history)
            index = data.index if isinstance(data.index, int) else data.index[0]
            prompt, answer = exchange(list(mine or []), index)
            alternative = answer_at(list(other or []), index)
            if not alternative:
                return error_md("Turn on the comparison (or write a better answer below): a preference needs two "
                                "answers to the same message.")
            chosen, rejected = (answer, alternative) if data.liked else (alternative, answer)
            try:
                count = record_preference(run_dir_of(run_id, browser_id, request), prompt, chosen, rejected)
            except StudioError as exc:
                return error_md(exc.message)
            return ok_md(f"Saved your preference ({count} in this run). {t('train_feedback')} tunes the run on them.")
        return on_like

    def on_better(answer: str, run_id: str | None, tuned_history: list, browser_id: str | None = None,
                  request: gr.Request = None):
        """A better answer to the last message, preferred over the fine-tuned model's."""
        history = list(tuned_history or [])
        last = next((i for i in range(len(history) - 1, -1, -1) if history[i]["role"] == "assistant"), None)
        if last is None:
            return error_md("Send a message first, then write a better answer to it."), gr.skip()
        prompt, rejected = exchange(history, last)
        try:
            count = record_preference(run_dir_of(run_id, browser_id, request), prompt, answer, rejected)
        except StudioError as exc:
            return error_md(exc.message), gr.skip()
        return ok_md(f"Saved your answer as the better one ({count} preference(s) in this run)."), ""

    tuned.like(judged("tuned"), [run, tuned, base, user], message, api_visibility="private")
    base.like(judged("base"), [run, tuned, base, user], message, api_visibility="private")
    save_better.click(on_better, [better, run, tuned, user], [message, better], api_name="chat_better_answer")
    inputs = [text, tuned, base, run, temperature, max_new, compare, user]
    send.click(chat, inputs, [tuned, base, message, text], api_name="chat")
    text.submit(chat, inputs, [tuned, base, message, text], api_visibility="private")
    clear.click(lambda: ([], [], ""), None, [tuned, base, message], api_visibility="private")
    refresh.click(choose, [run, user], run, api_visibility="private")
    return {"choose": choose, "run": run, "run_dir_of": run_dir_of, "train_feedback": train_feedback,
            "message": message}
