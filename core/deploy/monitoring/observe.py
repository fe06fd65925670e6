"""What the monitor keeps of one prediction: its outcome as categories, its confidence or score, and the input's
length and share of unknown tokens. The same description is made of the validation rows (the reference) and of
live traffic, so the two can be compared."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ...models.language import unknown_share
from ...tasks.outputs import OutputKind
from ...tasks.types import Prediction


@dataclass
class Observation:
    """One prediction as the monitor sees it."""

    outcome: list[str] = field(default_factory=list)  # the class, the labels, or the entity types found
    confidence: float | None = None  # the predicted class's probability (label sets, spans: the mean)
    value: float | None = None  # regression tasks: the predicted number
    input_chars: int = 0
    unknown_rate: float = 0.0


def outcome_counts(observations: list[Observation]) -> Counter:
    """How often each category (class, label, entity type) occurs in ``observations``."""
    return Counter(category for o in observations for category in o.outcome)


def observe(tokenizer, output: OutputKind, rows: dict[str, list[str]],
            predictions: list[Prediction]) -> list[Observation]:
    """Observations of ``predictions`` made for ``rows`` (role -> texts) by a task of ``output`` kind; all input roles
    count towards length."""
    texts = [" ".join(parts) for parts in zip(*rows.values())]
    ids = tokenizer([t[:2000] for t in texts], add_special_tokens=False)["input_ids"]
    found = []
    for text, token_ids, prediction in zip(texts, ids, predictions):
        outcome, confidence, value = output.outcome(prediction)
        found.append(Observation(outcome, confidence, value, len(text), unknown_share(tokenizer, [token_ids])))
    return found
