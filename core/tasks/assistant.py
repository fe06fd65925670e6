"""Generative SFT ("assistant"): a causal LM learns responses to prompts; the loss covers response tokens only."""
from __future__ import annotations

import math

import pandas as pd
import torch
from transformers import AutoModelForCausalLM

from ..common.errors import DataError
from ..data.tables import name_hint
from .base import Task
from .outputs import TEXT
from .types import Encoded, Role, Scored, TaskData, TaskView

PROMPT_HINTS = ("prompt", "question", "instruction", "input", "query", "问题", "指令")
RESPONSE_HINTS = ("response", "answer", "output", "completion", "reply", "回答", "答案")
SAMPLE_GENERATIONS = 3


def chat_ids(tokenizer, messages: list[dict], add_generation_prompt: bool) -> list[int]:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def encode_pair(tokenizer, prompt: str, response: str, max_length: int) -> tuple[list[int], list[int]]:
    """Token ids of the chat-formatted exchange and labels with every prompt token masked as -100."""
    user = [{"role": "user", "content": prompt}]
    prompt_ids = chat_ids(tokenizer, user, add_generation_prompt=True)
    full = chat_ids(tokenizer, user + [{"role": "assistant", "content": response}], add_generation_prompt=False)
    if full[:len(prompt_ids)] != prompt_ids:  # a template that rewrites the prompt: append the response instead
        full = prompt_ids + tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    labels = [-100] * len(prompt_ids) + full[len(prompt_ids):]
    return full[:max_length], labels[:max_length]


def response_logits(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits where a response token is predicted, their target tokens, and where those positions are (rows x
    positions): the LM head (a 49k-way projection for SmolLM2) runs there only, not at every prompt and padding
    position."""
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model  # LoRA stays injected
    layout = {k: batch[k] for k in ("attention_mask", "position_ids") if k in batch}  # padded, or packed rows
    hidden = causal_lm.model(input_ids=batch["input_ids"], use_cache=False,  # no key/value cache in training
                             **layout).last_hidden_state
    targets = batch["labels"][:, 1:]
    scored = targets != -100
    return causal_lm.lm_head(hidden[:, :-1][scored]), targets[scored], scored


class Assistant(Task):
    """Fine-tunes a causal LM on prompt/response pairs; keeps the checkpoint with the lowest validation loss."""

    name = "assistant"
    roles = (Role("prompt", "prompt", PROMPT_HINTS), Role("response", "response", RESPONSE_HINTS))
    view = TaskView("Assistant (prompt → response)", "助手（提示 → 回答）", ("prompt",), (("perplexity", "perplexity"),), "none",
                    "Sample generations")
    output = TEXT
    primary_metric = "val_loss"
    greater_is_better = False
    generative = True
    augmentations = ()
    model_class = AutoModelForCausalLM
    peft_task = "CAUSAL_LM"

    def guess_role(self, frame, role, chosen):
        return frame.columns[0]

    def recognises(self, frame: pd.DataFrame) -> bool:
        return all(any(name_hint(c, role.hints) for c in frame.columns) for role in self.roles)

    def build(self, frame: pd.DataFrame, columns: dict[str, str]) -> TaskData:
        values = self.strings(frame, columns)
        keep = (values["prompt"] != "") & (values["response"] != "")
        if keep.sum() < 4:
            raise DataError("Fewer than 4 rows have both a prompt and a response; add more examples.")
        return TaskData({"prompt": values["prompt"][keep].tolist()}, values["response"][keep].tolist(), columns,
                        rows_total=len(frame), rows_dropped=int((~keep).sum()))

    def to_frame(self, data: TaskData) -> pd.DataFrame:
        return pd.DataFrame({"prompt": data.inputs["prompt"], "response": data.targets})

    def texts(self, data: TaskData) -> list[str]:
        return data.inputs["prompt"] + data.targets

    def describe(self, data: TaskData) -> str:
        return (f"{len(data):,} prompt/response pairs kept, {data.rows_dropped:,} dropped · prompt column "
                f"<b>{data.columns['prompt']}</b> → response column <b>{data.columns['response']}</b>. "
                "Train with SmolLM2-135M-Instruct, then talk to it in the Chat tab.")

    def head(self, data: TaskData) -> dict:
        return {}

    def check_tokenizer(self, tokenizer, base_model: str) -> None:
        if not tokenizer.chat_template:
            raise DataError(f"The base model '{base_model}' has no chat template; pick an instruct model.")

    def encode(self, tokenizer, data: TaskData, max_length: int, state: dict) -> Encoded:
        pairs = [encode_pair(tokenizer, p, r, max_length) for p, r in zip(data.inputs["prompt"], data.targets)]
        return Encoded([ids for ids, _ in pairs], [labels for _, labels in pairs], per_token=True)

    def loss(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy over response tokens."""
        logits, targets, _ = response_logits(model, batch)
        return torch.nn.functional.cross_entropy(logits.float(), targets)

    def evaluate(self, ctx) -> tuple[float, Scored]:
        loss = self._validation_loss(ctx)
        metrics = {"perplexity": math.exp(min(loss, 50)), "samples": self._sample_generations(ctx)}
        return loss, Scored(metrics)

    def _validation_loss(self, ctx) -> float:
        """Mean loss per response token (batches weighted by their label tokens), through the same response-only
        LM head as training: logits for every position of a 64-row batch would take gigabytes."""
        total, tokens = 0.0, 0
        for _, batch, loss in ctx.forward_batches(ctx.val_encoded, self.loss):
            n = int((batch["labels"][:, 1:] != -100).sum())
            total, tokens = total + float(loss) * n, tokens + n
        return total / max(tokens, 1)

    @torch.inference_mode()
    def _sample_generations(self, ctx) -> list[dict]:
        samples = []
        for prompt, reference in list(zip(ctx.val.inputs["prompt"], ctx.val.targets))[:SAMPLE_GENERATIONS]:
            ctx.check_cancel()
            ids = torch.tensor([chat_ids(ctx.tokenizer, [{"role": "user", "content": prompt}], True)], device=ctx.device)
            # without autocast: token-by-token decoding would recast every frozen weight to bf16 per token (2.5x slower)
            out = ctx.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=40,
                                     do_sample=False, pad_token_id=ctx.tokenizer.pad_token_id)
            answer = ctx.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
            samples.append({"prompt": prompt, "reference": reference, "generated": answer})
        return samples
