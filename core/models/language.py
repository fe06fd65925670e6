"""Which registered base model reads a table's texts: the script mix and each tokenizer's unknown-token rate."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .registry import DEFAULT_CHAT_MODEL, load_tokenizer, models_for

HIGH_UNK_RATE = 0.10  # above this share of unknown tokens a model cannot read the text
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")
LANGUAGE_NAMES = {"en": "English (Latin script)", "zh": "Chinese", "mixed": "Chinese and Latin-script",
                  "other": "a non-Latin script"}


def script_mix(texts: list[str], sample: int = 500) -> tuple[str, float]:
    """The texts' language class and the share of CJK characters among their letters.

    ``zh``: mostly CJK; ``mixed``: a sizeable CJK share beside Latin script; ``other``: mostly another
    script (Cyrillic, Arabic, ...); ``en``: Latin script."""
    chars = "".join(text[:1000] for text in texts[:sample])
    letters = [ch for ch in chars if ch.isalpha()]
    if not letters:
        return "en", 0.0
    cjk = len(CJK.findall(chars)) / len(letters)
    latin = sum(ord(ch) < 0x250 for ch in letters) / len(letters)
    if cjk >= 0.5:
        return "zh", cjk
    if cjk >= 0.05:
        return "mixed", cjk
    return ("en" if latin >= 0.8 else "other"), cjk


def models_reading(language: str) -> list[str]:
    """Registered models whose languages include ``language``, in registry order (preference)."""
    return [key for key, model in models_for("text").items() if language in model.languages]


def unknown_token_rate(tokenizer, texts: list[str], sample: int = 500) -> float:
    """Share of tokens the tokenizer maps to its unknown token (first 1,000 characters of up to 500 texts)."""
    if tokenizer.unk_token_id is None or not texts:
        return 0.0
    return unknown_share(tokenizer, tokenizer([t[:1000] for t in texts[:sample]], add_special_tokens=False)["input_ids"])


def unknown_share(tokenizer, token_ids: list[list[int]]) -> float:
    """Share of already-tokenised ids (special tokens left out) that are the unknown token."""
    unk = getattr(tokenizer, "unk_token_id", None)  # an image processor has none
    if unk is None:
        return 0.0
    special = set(tokenizer.all_special_ids) - {unk}
    counted = [i for row in token_ids for i in row if i not in special]
    return counted.count(unk) / len(counted) if counted else 0.0


@dataclass(frozen=True)
class ModelSuggestion:
    """The registered model that reads the data best, and the evidence (for texts: their language)."""

    model: str
    language: str = ""  # "" for inputs that are not texts
    cjk_share: float = 0.0
    unknown_rates: dict[str, float] = field(default_factory=dict)  # model -> rate, for tokenizers on disk

    def message(self) -> str:
        if not self.language:
            return f"Suggested base model: {self.model}."
        rates = ", ".join(f"{model} {rate:.0%}" for model, rate in self.unknown_rates.items())
        return (f"Texts: {LANGUAGE_NAMES[self.language]} ({self.cjk_share:.0%} CJK characters)"
                + (f"; unknown tokens: {rates}" if rates else "") + f". Suggested base model: {self.model}.")


def suggest_text_model(task, data) -> ModelSuggestion:
    """For a task's texts: the first registered model (registry order = preference: small and fast first)
    whose languages include the texts' and whose tokenizer, where it is on disk, leaves at most
    HIGH_UNK_RATE unknown; a generative task (the assistant) gets the chat model."""
    texts = task.texts(data)
    language, cjk = script_mix(texts)
    rates = {key: unknown_token_rate(load_tokenizer(key), texts)
             for key, model in models_for("text").items() if not model.needs_conversion}
    if task.generative:
        return ModelSuggestion(DEFAULT_CHAT_MODEL, language, cjk, rates)
    readers = models_reading(language)
    fit = [key for key in readers if rates.get(key, 0.0) <= HIGH_UNK_RATE]
    return ModelSuggestion((fit or readers)[0], language, cjk, rates)


def unknown_token_warning(rate: float, model_name: str, texts: list[str]) -> str | None:
    """A plain warning when the base model cannot read much of the data, naming a model that can."""
    if rate <= HIGH_UNK_RATE:
        return None
    language, _ = script_mix(texts)
    better = [key for key in models_reading(language) if key != model_name]
    hint = f"Choose {' or '.join(better)}, which reads {LANGUAGE_NAMES[language]} text." if better \
        else "Pick a base model that reads this language."
    return (f"{rate:.0%} of the tokens are unknown to {model_name}: it cannot read much of this text. "
            f"Accuracy will suffer. {hint}")
