"""Preference tuning ("preference"): a causal LM learns to prefer the chosen answer to a prompt over the rejected
one, with DPO (Rafailov et al. 2023) or ORPO (Hong et al. 2024).

Each row is a pair of sequences (prompt + chosen, prompt + rejected) scored by the sum of the response tokens'
log-probabilities, with the LM head run only at response positions. DPO compares them with the starting model's
(the reference's) log-probabilities, computed once before the first step instead of by a second model at every
step; ORPO needs no reference and adds the chosen answer's language-model loss.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..common.errors import DataError
from ..runs.config import TrainConfig
from .assistant import PROMPT_HINTS, Assistant, encode_pair, response_logits
from .types import Encoded, Role, Scored, TaskData, TaskView


def answer_names(*words: str) -> tuple[str, ...]:
    """Column names for an answer of a kind: 'chosen', 'chosen_response', 'response_chosen', 'chosen answer'..."""
    forms = ("{}", "{}_response", "{}_answer", "{}_completion", "response_{}", "answer_{}", "{} response", "{} answer")
    return tuple(form.format(word) for word in words for form in forms)


CHOSEN_HINTS = answer_names("chosen", "preferred", "better", "accepted", "good", "winner") + ("选择", "更好")
REJECTED_HINTS = answer_names("rejected", "dispreferred", "worse", "bad", "loser") + ("拒绝", "更差")


@dataclass
class PairEncoded(Encoded):
    """Chosen sequences in ``input_ids``/``labels``, rejected ones beside them; a batch stacks the chosen rows
    over the rejected rows (2 x rows) and carries the reference log-probabilities once they are known."""

    rejected_ids: list[list[int]] = field(default_factory=list)
    rejected_labels: list[list[int]] = field(default_factory=list)
    reference: np.ndarray | None = None  # rows x 2: the starting model's log-probability of (chosen, rejected)
    method: str = "dpo"
    beta: float = 0.1

    def lengths(self) -> list[int]:
        return [max(len(chosen), len(rejected)) for chosen, rejected in zip(self.input_ids, self.rejected_ids)]

    def batch(self, indices: list[int], tokenizer, device: torch.device) -> dict:
        ids = [self.input_ids[i] for i in indices] + [self.rejected_ids[i] for i in indices]
        labels = [self.labels[i] for i in indices] + [self.rejected_labels[i] for i in indices]
        padded = tokenizer.pad({"input_ids": ids}, pad_to_multiple_of=8, padding_side="right", return_tensors="pt")
        width = padded["input_ids"].shape[1]
        batch = {**{k: v.to(device) for k, v in padded.items()},
                 "labels": torch.tensor([row + [-100] * (width - len(row)) for row in labels], device=device),
                 "method": self.method, "beta": self.beta}
        if self.reference is not None:
            pairs = torch.tensor(self.reference[indices], dtype=torch.float32, device=device)
            batch["reference"] = torch.cat([pairs[:, 0], pairs[:, 1]])
        return batch


def response_logps(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence: the sum of its response tokens' log-probabilities and how many response tokens it has."""
    logits, targets, scored = response_logits(model, batch)
    token_logps = -F.cross_entropy(logits.float(), targets, reduction="none")
    sums = torch.zeros(scored.shape[0], device=logits.device).index_add(0, scored.nonzero()[:, 0], token_logps)
    return sums, scored.sum(1)


@dataclass
class PairScores:
    """One batch of pairs: each pair's loss and the implicit rewards of its chosen and rejected answers."""

    loss: torch.Tensor  # one per pair
    chosen: torch.Tensor
    rejected: torch.Tensor
    lm_loss: torch.Tensor | None = None  # ORPO: the chosen answers' mean token loss (a scalar)

    @property
    def mean_loss(self) -> torch.Tensor:
        return self.loss.mean() + (self.lm_loss if self.lm_loss is not None else 0)


def score_pairs(model, batch: dict, method: str, beta: float) -> PairScores:
    """DPO: -log sigmoid(beta * (policy - reference log-ratio of chosen over rejected)); rewards beta * (policy -
    reference). ORPO: the chosen answer's token loss - beta * log sigmoid(log odds ratio of the mean token
    log-probabilities); rewards beta * mean token log-probability (as TRL reports them)."""
    sums, counts = response_logps(model, batch)
    half = sums.shape[0] // 2
    if method == "dpo":
        rewards = beta * (sums - batch["reference"])
        chosen, rejected = rewards[:half], rewards[half:]
        return PairScores(-F.logsigmoid(chosen - rejected), chosen.detach(), rejected.detach())
    means = sums / counts.clamp(min=1)
    mean_c, mean_r = means[:half], means[half:]
    log_odds = (mean_c - mean_r) - (torch.log1p(-torch.exp(mean_c).clamp(max=1 - 1e-6))
                                    - torch.log1p(-torch.exp(mean_r).clamp(max=1 - 1e-6)))
    lm_loss = -sums[:half].sum() / counts[:half].sum().clamp(min=1)
    return PairScores(-beta * F.logsigmoid(log_odds), beta * mean_c.detach(), beta * mean_r.detach(), lm_loss)


class Preference(Assistant):
    """Tunes an assistant (a run or an instruct base model) on prompt / chosen / rejected rows."""

    name = "preference"
    builds_on_chat_runs = True
    roles = (Role("prompt", "prompt", PROMPT_HINTS), Role("chosen", "chosen answer", CHOSEN_HINTS),
             Role("rejected", "rejected answer", REJECTED_HINTS))
    view = TaskView("Preference tuning (prompt → chosen ≻ rejected)", "偏好微调（提示 → 更好 ≻ 更差）", ("prompt",),
                    (("reward_accuracy", "reward accuracy"), ("reward_margin", "reward margin")), "none",
                    "Sample generations", curves=("reward_margin",))

    def build(self, frame: pd.DataFrame, columns: dict[str, str]) -> TaskData:
        values = self.strings(frame, columns)
        filled = (values["prompt"] != "") & (values["chosen"] != "") & (values["rejected"] != "")
        keep = filled & (values["chosen"] != values["rejected"])
        if keep.sum() < 4:
            raise DataError("Fewer than 4 rows have a prompt, a chosen and a different rejected answer; add more "
                            "preference pairs.")
        warnings = []
        if (same := int((filled & ~keep).sum())):
            warnings.append(f"{same:,} row(s) have the same chosen and rejected answer and were left out.")
        return TaskData({"prompt": values["prompt"][keep].tolist(), "rejected": values["rejected"][keep].tolist()},
                        values["chosen"][keep].tolist(), columns, rows_total=len(frame),
                        rows_dropped=int((~keep).sum()), warnings=warnings)

    def to_frame(self, data: TaskData) -> pd.DataFrame:
        return pd.DataFrame({"prompt": data.inputs["prompt"], "chosen": data.targets,
                             "rejected": data.inputs["rejected"]})

    def texts(self, data: TaskData) -> list[str]:
        return data.inputs["prompt"] + data.targets + data.inputs["rejected"]

    def describe(self, data: TaskData) -> str:
        columns = data.columns
        return (f"{len(data):,} preference pairs kept, {data.rows_dropped:,} dropped · prompt <b>{columns['prompt']}</b>"
                f" → chosen <b>{columns['chosen']}</b> ≻ rejected <b>{columns['rejected']}</b>. Tune an assistant run "
                "(pick its folder as the base model) or SmolLM2-135M-Instruct with DPO or ORPO.")

    def fit(self, train: TaskData, config: TrainConfig | None = None) -> dict:
        config = config or TrainConfig(task=self.name)
        return {"method": config.preference_loss, "beta": config.preference_beta}

    def encode(self, tokenizer, data: TaskData, max_length: int, state: dict) -> PairEncoded:
        chosen = [encode_pair(tokenizer, p, r, max_length) for p, r in zip(data.inputs["prompt"], data.targets)]
        rejected = [encode_pair(tokenizer, p, r, max_length) for p, r in zip(data.inputs["prompt"], data.inputs["rejected"])]
        return PairEncoded([ids for ids, _ in chosen], [labels for _, labels in chosen], per_token=True,
                           rejected_ids=[ids for ids, _ in rejected], rejected_labels=[labels for _, labels in rejected],
                           method=state["method"], beta=state["beta"])

    def encoding_warnings(self, encoded: PairEncoded, data: TaskData) -> list[str]:
        cut = sum(all(t == -100 for t in labels[1:]) for labels in encoded.labels + encoded.rejected_labels)
        return [f"{cut:,} answer(s) lost every token to the max length (the prompt fills it); raise the max length."] if cut else []

    def before_training(self, ctx, train: PairEncoded) -> None:
        """DPO: the starting model's log-probabilities of every training and validation answer, computed once."""
        if train.method != "dpo":
            return
        ctx.status("Scoring every answer with the starting model (DPO's reference)")
        for encoded in (train, ctx.val_encoded):
            reference = np.zeros((len(encoded.input_ids), 2), dtype=np.float32)
            for indices, _, (sums, _) in ctx.forward_batches(encoded, response_logps):
                pairs = sums.float().cpu().numpy().reshape(2, -1).T
                reference[indices] = pairs
            encoded.reference = reference

    def loss(self, model, batch: dict) -> torch.Tensor:
        return score_pairs(model, batch, batch["method"], batch["beta"]).mean_loss

    def evaluate(self, ctx) -> tuple[float, Scored]:
        encoded = ctx.val_encoded
        losses, margins, lm_losses = [], [], []
        for _, batch, scores in ctx.forward_batches(encoded, lambda m, b: score_pairs(m, b, encoded.method,
                                                                                         encoded.beta)):
            losses.append(scores.loss.float().cpu())
            margins.append((scores.chosen - scores.rejected).float().cpu())
            if scores.lm_loss is not None:
                lm_losses.append(float(scores.lm_loss) * len(scores.loss))
        margin = torch.cat(margins)
        loss = float(torch.cat(losses).mean()) + (sum(lm_losses) / len(margin) if lm_losses else 0.0)
        metrics = {"reward_accuracy": float((margin > 0).float().mean()), "reward_margin": float(margin.mean()),
                   "samples": self._sample_generations(ctx)}
        return loss, Scored(metrics)

    def baseline(self, train: TaskData, val: TaskData, state: dict) -> dict | None:
        """Before tuning every DPO reward is 0: the loss is log 2 and a margin above 0 is a coin toss."""
        if state["method"] != "dpo":
            return None
        return {"name": "the starting model", "val_loss": math.log(2), "reward_accuracy": 0.5}
