"""Chat tab: talk to a fine-tuned assistant run, streamed, side by side with its base model."""
from __future__ import annotations

import gradio as gr

from core.chat import load_chat_model
from core.run_folder import RunFolder
from core.errors import StudioError

from .context import AppContext, error_md, run_picker, viewer_of
from .strings import t


def text_of(content) -> str:
    """Chatbot messages come back either as a string or as a list of {"type": "text", "text": ...} parts."""
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))


def build(ctx: AppContext, user: gr.BrowserState) -> dict:
    run, refresh = run_picker(t("chat_run"), "chat-run")
    message = gr.HTML(elem_id="chat-message")
    with gr.Row():
        tuned = gr.Chatbot(label=t("chat_tuned"), height=380, elem_id="chat-tuned")
        base = gr.Chatbot(label=t("chat_base"), height=380, elem_id="chat-base")
    with gr.Row():
        text = gr.Textbox(label=t("chat_in"), scale=4, elem_id="chat-text")
        send = gr.Button(t("send"), variant="primary", scale=1, elem_id="chat-send")
    with gr.Row():
        temperature = gr.Slider(0, 1.5, value=0.7, step=0.05, label=t("temperature"), elem_id="chat-temperature")
        max_new = gr.Slider(8, 512, value=128, step=8, label=t("max_new_tokens"), elem_id="chat-max-new")
        compare = gr.Checkbox(True, label=t("compare"), elem_id="chat-compare")
        clear = gr.Button(t("clear"), elem_id="chat-clear")

    def chat(prompt: str, tuned_history: list, base_history: list, run_id: str | None, temp: float, max_tokens: int,
             with_base: bool = True, browser_id: str | None = None, request: gr.Request = None):
        """Stream the fine-tuned model's answer, then (optionally) the base model's answer to the same prompt."""
        tuned_history, base_history = list(tuned_history or []), list(base_history or [])
        if not prompt or not prompt.strip():
            yield tuned_history, base_history, error_md("Type a message first."), gr.skip()
            return
        try:
            run_dir = ctx.store.path_of(run_id, viewer_of(request, browser_id)) if run_id else None
            if run_dir is None:
                raise StudioError("Train an assistant first (Data tab: task 'Assistant'), then pick it here.")
            model = load_chat_model(str(run_dir))
            base_model = RunFolder(run_dir).config().base_model
        except StudioError as exc:
            yield tuned_history, base_history, error_md(exc.message), gr.skip()
            return
        for history, source in [(tuned_history, model)] + ([(base_history, None)] if with_base else []):
            source = source or load_chat_model(base_model)
            messages = [{"role": m["role"], "content": text_of(m["content"])} for m in history
                        if m["role"] in ("user", "assistant")] + [{"role": "user", "content": prompt}]
            history += [{"role": "user", "content": prompt}, {"role": "assistant", "content": ""}]
            for answer in source.stream(messages, float(temp), int(max_tokens)):
                history[-1]["content"] = answer
                yield tuned_history, base_history, "", ""
        yield tuned_history, base_history, "", ""

    def choose(selected: str | None, browser_id: str | None = None, request: gr.Request = None):
        return ctx.pick_run(selected, viewer_of(request, browser_id), "assistant")[0]

    inputs = [text, tuned, base, run, temperature, max_new, compare, user]
    send.click(chat, inputs, [tuned, base, message, text], api_name="chat")
    text.submit(chat, inputs, [tuned, base, message, text], api_visibility="private")
    clear.click(lambda: ([], [], ""), None, [tuned, base, message], api_visibility="private")
    refresh.click(choose, [run, user], run, api_visibility="private")
    return {"choose": choose, "run": run}
