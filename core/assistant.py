"""Generative SFT ("assistant" task): a causal LM learns responses to prompts; the loss covers response tokens only."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from transformers import AutoModelForCausalLM

from . import events as ev
from .data import _as_strings, _name_hint
from .engine import Encoded, TrainingJob, autocast, freeze_token_embeddings, training_overrides, training_tokenizer
from .errors import DataError
from .lora import apply_lora
from .models import resolve_model_path
from .store import write_csv_atomic, write_json_atomic

PROMPT_HINTS = ("prompt", "question", "instruction", "input", "query", "问题", "指令")
RESPONSE_HINTS = ("response", "answer", "output", "completion", "reply", "回答", "答案")
SAMPLE_GENERATIONS = 3


@dataclass
class PairData:
    """Prompt/response pairs for generative fine-tuning."""

    prompts: list[str]
    responses: list[str]
    text_column: str
    label_column: str
    rows_total: int = 0
    rows_dropped: int = 0
    warnings: list[str] = field(default_factory=list)
    label_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, indices) -> "PairData":
        idx = list(indices)
        return PairData([self.prompts[i] for i in idx], [self.responses[i] for i in idx], self.text_column,
                        self.label_column, len(idx))


def _guess(frame: pd.DataFrame, hints: tuple[str, ...], exclude: str | None) -> str | None:
    return next((c for c in frame.columns if c != exclude and _name_hint(c, hints)), None)


def prepare_pairs(frame: pd.DataFrame, prompt_column: str | None = None, response_column: str | None = None) -> PairData:
    """Pick the prompt and response columns (by name, else the first two) and drop incomplete rows."""
    if len(frame.columns) < 2:
        raise DataError("The table needs a prompt column and a response column.")
    prompt_column = prompt_column or _guess(frame, PROMPT_HINTS, response_column) or frame.columns[0]
    response_column = response_column or _guess(frame, RESPONSE_HINTS, prompt_column) or next(
        c for c in frame.columns if c != prompt_column)
    for role, column in (("prompt", prompt_column), ("response", response_column)):
        if column not in frame.columns:
            raise DataError(f"The {role} column '{column}' is not in the table. Columns: {', '.join(frame.columns)}.")
    if prompt_column == response_column:
        raise DataError("The prompt column and the response column must be different columns.")
    prompts, responses = _as_strings(frame[prompt_column]), _as_strings(frame[response_column])
    keep = (prompts != "") & (responses != "")
    if keep.sum() < 4:
        raise DataError("Fewer than 4 rows have both a prompt and a response; add more examples.")
    return PairData(prompts[keep].tolist(), responses[keep].tolist(), prompt_column, response_column,
                    rows_total=len(frame), rows_dropped=int((~keep).sum()))


def _chat_ids(tokenizer, messages: list[dict], add_generation_prompt: bool) -> list[int]:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def encode_pair(tokenizer, prompt: str, response: str, max_length: int) -> tuple[list[int], list[int]]:
    """Token ids of the chat-formatted exchange and labels with every prompt token masked as -100."""
    user = [{"role": "user", "content": prompt}]
    prompt_ids = _chat_ids(tokenizer, user, add_generation_prompt=True)
    full = _chat_ids(tokenizer, user + [{"role": "assistant", "content": response}], add_generation_prompt=False)
    if full[:len(prompt_ids)] != prompt_ids:  # a template that rewrites the prompt: append the response instead
        full = prompt_ids + tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    labels = [-100] * len(prompt_ids) + full[len(prompt_ids):]
    return full[:max_length], labels[:max_length]


class AssistantJob(TrainingJob):
    """Fine-tunes a causal LM on prompt/response pairs; keeps the checkpoint with the lowest validation loss."""

    data: PairData

    def _split(self):
        indices = list(range(len(self.data)))
        n_val = max(1, round(self.config.val_fraction * len(indices)))
        train_idx, val_idx = train_test_split(indices, test_size=n_val, random_state=self.config.seed)
        return self.data.subset(train_idx), self.data.subset(val_idx)

    def _load_model(self):
        path = resolve_model_path(self.config.base_model)
        tokenizer = training_tokenizer(self.config.base_model)
        if not tokenizer.chat_template:
            raise DataError(f"The base model '{self.config.base_model}' has no chat template; pick an instruct model.")
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, use_safetensors=True,
                                                     **training_overrides(path, self.config, self._device))
        model.config.pad_token_id = tokenizer.pad_token_id
        if self.config.lora:
            model = apply_lora(model, self.config, "CAUSAL_LM")
        elif self.config.freeze_embeddings:
            freeze_token_embeddings(model)
        return tokenizer, model

    @staticmethod
    def _texts(subset: PairData) -> list[str]:
        return subset.prompts + subset.responses

    @staticmethod
    def _encode(tokenizer, subset: PairData, max_length: int) -> Encoded:
        pairs = [encode_pair(tokenizer, p, r, max_length) for p, r in zip(subset.prompts, subset.responses)]
        return Encoded([ids for ids, _ in pairs], [labels for _, labels in pairs])

    @staticmethod
    def _baseline_of(train: PairData, val: PairData) -> None:
        return None

    @staticmethod
    def _read_saved_data(run_dir: Path, meta: dict) -> PairData:
        frame = pd.read_csv(run_dir / "dataset.csv", dtype=str, keep_default_na=False)
        return PairData(frame["prompt"].tolist(), frame["response"].tolist(), meta["text_column"],
                        meta["label_column"], meta["rows_total"], meta["rows_dropped"])

    def _save_data(self, train: PairData, val: PairData) -> None:
        data = self.data
        write_json_atomic(self.run_dir / "data.json", {
            "name": self.data_name, "task": "assistant", "text_column": data.text_column,
            "label_column": data.label_column, "label_names": [], "rows_total": data.rows_total,
            "rows_dropped": data.rows_dropped, "train_rows": len(train), "val_rows": len(val),
        })
        write_csv_atomic(pd.DataFrame({"prompt": data.prompts, "response": data.responses}), self.run_dir / "dataset.csv")

    @torch.inference_mode()
    def _validation_loss(self) -> float:
        model, enc = self._model, self._val_encoded()
        model.eval()
        total, tokens = 0.0, 0
        batch_size = max(16, self.config.batch_size * 2)
        for start in range(0, len(enc.input_ids), batch_size):
            self._check_cancel()
            batch = enc.batch(list(range(start, min(start + batch_size, len(enc.input_ids)))), self._tokenizer,
                              self._device)
            with autocast(self._device, self._precision):
                loss = model(**batch).loss
            n = int((batch["labels"][:, 1:] != -100).sum())
            total, tokens = total + float(loss) * n, tokens + n
        model.train()
        return total / max(tokens, 1)

    @torch.inference_mode()
    def _sample_generations(self) -> list[dict]:
        self._model.eval()
        samples = []
        for prompt, reference in list(zip(self._val.prompts, self._val.responses))[:SAMPLE_GENERATIONS]:
            ids = torch.tensor([_chat_ids(self._tokenizer, [{"role": "user", "content": prompt}], True)],
                               device=self._device)
            with autocast(self._device, self._precision):
                out = self._model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=40,
                                           do_sample=False, pad_token_id=self._tokenizer.pad_token_id)
            answer = self._tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
            samples.append({"prompt": prompt, "reference": reference, "generated": answer})
        self._model.train()
        return samples

    def _evaluate(self, step: int, epoch: float) -> bool:
        loss = self._validation_loss()
        improved = self._best is None or loss < self._best["val_loss"]
        samples = self._sample_generations()
        if improved:
            self._best = {"val_loss": loss, "perplexity": math.exp(min(loss, 50)), "step": step, "epoch": epoch,
                          "samples": samples}
            self._save_checkpoint()
        self.events.publish(ev.GenerationEvaluation(step, epoch, loss, math.exp(min(loss, 50)), samples, improved))
        return improved
