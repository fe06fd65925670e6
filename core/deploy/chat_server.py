"""OpenAI-compatible routes for an assistant run, so existing clients (the ``openai`` package and anything built
on it) can talk to a fine-tune: POST /v1/chat/completions, plain or streamed as server-sent events, and
GET /v1/models. Errors use OpenAI's shape, {"error": {"message", "type"}}."""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Iterator, Literal

from pydantic import BaseModel, Field

from .chat import ChatModel


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str | list[dict] = Field(description="text, or a list of {'type': 'text', 'text': ...} parts")

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.get("text", "") for part in self.content if part.get("type") == "text")


class ChatRequest(BaseModel):
    model: str | None = None
    messages: list[ChatMessage]
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stream: bool = False
    seed: int | None = Field(None, description="the same seed and settings give the same answer")
    n: int = Field(1, ge=1, le=1, description="one answer per request")


def openai_error(status: int, message: str):
    from fastapi.responses import JSONResponse

    kind = {401: "authentication_error", 404: "not_found_error", 413: "invalid_request_error"}.get(
        status, "invalid_request_error" if status < 500 else "server_error")
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}}, status_code=status)


def add_chat_routes(app, folder: Path, limits) -> None:
    """Serve the assistant in ``folder`` on ``app`` within ``limits`` (ServeLimits)."""
    from fastapi.responses import StreamingResponse

    chat, name, created = ChatModel(folder), Path(folder).name, int(time.time())

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": created,
                                            "owned_by": "sft-studio"}]}

    @app.post("/v1/chat/completions")
    def completions(body: ChatRequest):
        if not body.messages:
            return openai_error(422, "Send at least one message.")
        if body.model not in (None, "", name):
            return openai_error(404, f"This server serves the model '{name}' (asked for '{body.model}').")
        messages = [{"role": m.role, "content": m.text()} for m in body.messages]
        if sum(len(m["content"]) for m in messages) > limits.max_chars:
            return openai_error(413, f"The messages are longer than {limits.max_chars:,} characters.")
        wanted = body.max_completion_tokens or body.max_tokens or limits.max_new_tokens
        if wanted > limits.max_new_tokens:
            return openai_error(422, f"max_tokens can be at most {limits.max_new_tokens} on this server (got {wanted}).")
        answer = Completion(chat, name, messages, body.temperature, wanted, body.seed)
        if body.stream:
            return StreamingResponse(answer.events(), media_type="text/event-stream")
        return answer.whole()


class Completion:
    """One answer, as a whole response or as server-sent chunks."""

    def __init__(self, chat: ChatModel, model: str, messages: list[dict], temperature: float, max_tokens: int,
                 seed: int | None = None):
        self.chat, self.model, self.messages = chat, model, messages
        self.temperature, self.max_tokens, self.seed = temperature, max_tokens, seed
        self.id, self.created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def _pieces(self) -> Iterator[str]:
        said = ""
        for answer in self.chat.stream(self.messages, self.temperature, self.max_tokens, self.seed):
            if len(answer) > len(said):
                yield answer[len(said):]
                said = answer

    def _usage(self, answer: str) -> tuple[dict, str]:
        tokenizer = self.chat.tokenizer
        prompt = len(tokenizer.apply_chat_template(self.messages, add_generation_prompt=True, tokenize=True,
                                                   return_dict=True)["input_ids"])
        completion = len(tokenizer(answer, add_special_tokens=False)["input_ids"])
        reason = "length" if completion >= self.max_tokens else "stop"
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}, reason

    def whole(self) -> dict:
        answer = "".join(self._pieces())
        usage, reason = self._usage(answer)
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": reason}],
                "usage": usage}

    def _chunk(self, delta: dict, reason: str | None = None) -> str:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    def events(self) -> Iterator[str]:
        yield self._chunk({"role": "assistant", "content": ""})
        answer = ""
        for piece in self._pieces():
            answer += piece
            yield self._chunk({"content": piece})
        yield self._chunk({}, self._usage(answer)[1])
        yield "data: [DONE]\n\n"
