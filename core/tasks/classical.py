"""Classical baselines a fine-tune must beat: TF-IDF n-grams with a linear model, or a CRF for entities.

Each task builds its own baseline from these parts (``Task.classical_baseline``); ``fit_classical`` runs it
on the run's own training split, scores it on the same validation rows, caps its cost and never fails a run.
The engine fits it in a thread beside the first optimizer steps (``start_classical``), so training starts at
once and the baseline shows up a few seconds later.
"""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from ..models.language import script_mix

MAX_TRAIN_ROWS = 20_000  # above this the baseline fits on a seeded subsample (its cost stays a few seconds)
MAX_FEATURES = 200_000  # per vectoriser
MAX_CHARS = 2_000  # of each text (the fine-tune reads 128 tokens, about 600 characters, by default)


@dataclass
class TextFeatures:
    """TF-IDF features fitted on training texts: word 1-2 grams + character 2-5 grams, or characters 1-3
    for Chinese/Japanese/Korean text (no spaces between words)."""

    union: FeatureUnion

    @classmethod
    def fit(cls, texts: list[str]) -> "TextFeatures":
        language, _ = script_mix(texts)
        common = dict(sublinear_tf=True, min_df=1, max_features=MAX_FEATURES, dtype=np.float32)
        if language in ("zh", "mixed"):
            parts = [("chars", TfidfVectorizer(analyzer="char", ngram_range=(1, 3), **common))]
        else:
            parts = [("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b",
                                               **common)),
                     ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common))]
        union = FeatureUnion(parts)
        union.fit(clipped(texts))
        return cls(union)

    def __call__(self, texts: list[str]) -> sp.csr_matrix:
        return sp.csr_matrix(self.union.transform(clipped(texts)))


def clipped(texts: list[str]) -> list[str]:
    return [t[:MAX_CHARS] or " " for t in texts]


def pair_features(features: TextFeatures, first: list[str], second: list[str]) -> sp.csr_matrix:
    """Both texts' features, their element-wise product (shared n-grams) and their cosine similarity."""
    a, b = features(first), features(second)
    norms = np.sqrt(a.multiply(a).sum(1).A1 * b.multiply(b).sum(1).A1)
    cosine = a.multiply(b).sum(1).A1 / np.maximum(norms, 1e-12)
    return sp.hstack([a, b, a.multiply(b), sp.csr_matrix(cosine[:, None])], format="csr")


def word_features(words: list[str], i: int) -> dict[str, object]:
    """CRF features of one word (or character): its form, shape, affixes and its neighbours'."""
    word = words[i]
    features: dict[str, object] = {"bias": 1.0, "w": word.lower(), "suffix3": word[-3:].lower(),
                                   "prefix2": word[:2].lower(), "title": word.istitle(), "upper": word.isupper(),
                                   "digit": word.isdigit(), "alpha": word.isalpha()}
    for offset in (-2, -1, 1, 2):
        j = i + offset
        features[f"{offset}:w"] = words[j].lower() if 0 <= j < len(words) else ("<s>" if j < 0 else "</s>")
    for offset in (-1, 1):
        j = i + offset
        if 0 <= j < len(words):
            features[f"{offset}:title"] = words[j].istitle()
            pair = (words[j], word) if offset < 0 else (word, words[j])
            features[f"{offset}:bigram"] = "|".join(pair).lower()
    return features


def crf_tags(train_words: list[list[str]], train_tags: list[list[str]], words: list[list[str]]) -> list[list[str]]:
    """Tags a linear-chain CRF (sklearn-crfsuite, L-BFGS with L1+L2) predicts for ``words``."""
    from sklearn_crfsuite import CRF

    crf = CRF(algorithm="lbfgs", c1=0.1, c2=0.1, max_iterations=100, all_possible_transitions=True)
    crf.fit([[word_features(row, i) for i in range(len(row))] for row in train_words], train_tags)
    return crf.predict([[word_features(row, i) for i in range(len(row))] for row in words])


def subsample(data, seed: int):
    """At most MAX_TRAIN_ROWS training rows (a seeded random subset above that)."""
    if len(data) <= MAX_TRAIN_ROWS:
        return data
    rows = np.random.default_rng(seed).choice(len(data), MAX_TRAIN_ROWS, replace=False)
    return data.subset(sorted(rows.tolist()))


def fit_classical(task, train, val, state: dict, seed: int) -> dict | None:
    """The task's classical baseline as {'name', 'seconds', metric: value}, or {'name', 'skipped': why} when
    it cannot be fitted (e.g. too few rows). None for tasks without one (the assistant)."""
    name = task.classical_name
    if not name:
        return None
    started = time.perf_counter()
    fitted_on = subsample(train, seed)
    try:
        metrics = task.classical_baseline(fitted_on, val, state)
    except (ValueError, MemoryError, ImportError) as exc:  # e.g. one class left, an empty vocabulary
        return {"name": name, "skipped": f"could not be fitted ({type(exc).__name__}: {str(exc)[:200]})"}
    note = {"train_rows": len(fitted_on)} if len(fitted_on) < len(train) else {}
    return {"name": name, **metrics, "seconds": round(time.perf_counter() - started, 2), **note}


def start_classical(task, train, val, state: dict, seed: int) -> Future:
    """``fit_classical`` in a background thread."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="sft-classical")
    try:
        return pool.submit(fit_classical, task, train, val, state, seed)
    finally:
        pool.shutdown(wait=False)


def classical_result(job: Future, task) -> dict | None:
    """The fitted baseline, or a skipped note for a failure that ``fit_classical`` did not foresee."""
    try:
        return job.result()
    except Exception as exc:  # a baseline never fails the run it is compared with
        return {"name": task.classical_name, "skipped": f"failed ({type(exc).__name__}: {str(exc)[:200]})"}
