"""Chat with a fine-tuned assistant run or a base model, streaming tokens."""
from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer

from ..common.devices import pick_device
from ..common.errors import ModelError
from ..models.lora import is_adapter_run
from ..models.registry import REGISTRY, resolve_model_path
from ..runs.run_folder import RunFolder
from ..runs.weights import load_run_model


class ChatModel:
    """A causal LM with its chat template: a registered base model key or an assistant run folder."""

    def __init__(self, source: str | Path):
        self.device = pick_device()
        folder = resolve_model_path(str(source)) if str(source) in REGISTRY else Path(source)
        if is_adapter_run(folder):
            model = load_run_model(folder, AutoModelForCausalLM, RunFolder(folder).config().base_model)
        elif (folder / RunFolder.WEIGHTS).is_file():
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, use_safetensors=True)
        else:
            raise ModelError(f"'{folder.name}' has no saved model to chat with.")
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        if not self.tokenizer.chat_template:
            raise ModelError("This model has no chat template, so it cannot chat. Pick an instruct model.")
        self.model = model.to(self.device).eval()
        self._lock = threading.Lock()

    def stream(self, messages: list[dict], temperature: float = 0.7, max_new_tokens: int = 128,
               seed: int | None = None) -> Iterator[str]:
        """Yield the answer so far after each new token; a ``seed`` makes sampling repeatable."""
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        sampling = dict(do_sample=True, temperature=temperature, top_p=0.9) if temperature > 0 else dict(do_sample=False)
        kwargs = dict(**{k: v.to(self.device) for k, v in ids.items()}, max_new_tokens=max_new_tokens,
                      streamer=streamer, pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                      **sampling)
        with self._lock:
            if seed is not None:
                torch.manual_seed(seed)
            thread = threading.Thread(target=self._generate, kwargs=kwargs, daemon=True)
            thread.start()
            answer = ""
            for piece in streamer:
                answer += piece
                yield answer
            thread.join()

    @torch.inference_mode()
    def _generate(self, **kwargs) -> None:
        self.model.generate(**kwargs)

    def reply(self, messages: list[dict], temperature: float = 0.0, max_new_tokens: int = 128) -> str:
        answer = ""
        for answer in self.stream(messages, temperature, max_new_tokens):
            pass
        return answer


@lru_cache(maxsize=3)
def load_chat_model(source: str) -> ChatModel:
    return ChatModel(source)
