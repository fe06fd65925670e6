"""Which words moved a prediction: integrated gradients (captum's LayerIntegratedGradients) over the model's
input embeddings, from a baseline of padding tokens (special tokens kept) to the text, for the logit of the
predicted class. Each token's attribution is summed over the embedding, the tokens of one word are added up (the
tokenizer's offsets), and the words' weights are scaled to [-1, 1]: positive pushed towards the predicted class.

Tasks with one text in and one class out (classification) are explained so; image classifiers get an occlusion map
instead (core.deploy.saliency); the others get a clear message.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from ..common.errors import DataError
from .predict import Predictor
from .saliency import Saliency, saliency

STEPS = 32  # integration steps: the attributions' sum is within a few percent of the logit difference
WORD = re.compile(r"\w+|[^\w\s]")  # a word, or one punctuation mark (a Chinese character run is one \w+ word)


@dataclass(frozen=True)
class Explanation:
    label: str
    words: list[tuple[str, float]]  # each word of the text (as written) and its weight in [-1, 1]

    def to_dict(self) -> dict:
        return {"label": self.label, "words": [{"text": w, "weight": round(v, 4)} for w, v in self.words]}

    def top(self, k: int) -> list[int]:
        """Indices of the ``k`` words that pushed most towards the label."""
        return sorted(range(len(self.words)), key=lambda i: -self.words[i][1])[:k]


def explainable(predictor: Predictor) -> str | None:
    """Why the run's predictions cannot be explained, or None."""
    task = predictor.task
    modality = task.modality
    if not ((modality.tokens or modality.pixels) and task.output.one_class and len(predictor.inputs) == 1):
        return (f"Explanations cover tasks with one text in and one class out (its words), or one image in and one "
                f"class out (a saliency map), not {task.view.title}.")
    return None


def explain(predictor: Predictor, inputs: list, steps: int = STEPS) -> list[Explanation | Saliency]:
    """One explanation per input: a text's words (at most ``predictor.max_length`` tokens of it are read, as in
    prediction), or an image's saliency map."""
    if (why := explainable(predictor)) is not None:
        raise DataError(why)
    if predictor.task.modality.pixels:
        return saliency(predictor, inputs)
    return explain_words(predictor, inputs, steps)


def explain_words(predictor: Predictor, texts: list[str], steps: int) -> list[Explanation]:
    from captum.attr import LayerIntegratedGradients

    model, tokenizer = predictor.model, predictor.tokenizer
    predictions = predictor.predict(texts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    special = set(tokenizer.all_special_ids)

    def logits(ids: torch.Tensor) -> torch.Tensor:
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits

    found = []
    with predictor._lock:
        integrated = LayerIntegratedGradients(logits, model.get_input_embeddings())
        for text, prediction in zip(texts, predictions):
            encoded = tokenizer(text, truncation=True, max_length=predictor.max_length, return_offsets_mapping=True,
                                return_tensors="pt")
            ids = encoded["input_ids"].to(predictor.device)
            baseline = torch.where(torch.isin(ids, torch.tensor(sorted(special), device=ids.device)), ids, pad)
            target = predictor.label_names.index(prediction.label)
            scores = integrated.attribute(ids, baselines=baseline, target=target, n_steps=steps,
                                          internal_batch_size=steps).sum(-1)[0].detach().cpu()
            found.append(Explanation(prediction.label, word_weights(text, encoded["offset_mapping"][0].tolist(),
                                                                    scores.tolist())))
    return found


def word_weights(text: str, offsets: list[tuple[int, int]], scores: list[float]) -> list[tuple[str, float]]:
    """The tokens' scores added up per word of ``text`` (special tokens have empty offsets), scaled to [-1, 1];
    words after the truncation get 0."""
    spans = [(m.start(), m.end()) for m in WORD.finditer(text)]
    weights = [0.0] * len(spans)
    for (start, end), score in zip(offsets, scores):
        if end <= start:
            continue
        word = next((i for i, (a, b) in enumerate(spans) if a < end and start < b), None)  # "▁word" overlaps it
        if word is not None:
            weights[word] += score
    scale = max((abs(w) for w in weights), default=0.0) or 1.0
    return [(text[a:b], w / scale) for (a, b), w in zip(spans, weights)]
