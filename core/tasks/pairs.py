"""Sentence pairs: two texts and a class (paraphrase, duplicate, entailment) or a similarity score.

Both texts go through the tokenizer as one pair (segment ids where the model has them); truncation
trims the longer side first, so both texts always reach the model.
"""
from __future__ import annotations

import pandas as pd

from ..data.tables import as_strings, name_hint
from .classification import CLASS_CARDS, Classification
from .regression import REGRESSION_CARDS, Regression, looks_like_scores
from .types import Role, TaskView

FIRST_HINTS = ("sentence1", "sentence_1", "sentence_a", "question1", "question_1", "text_a", "text1", "premise",
               "query", "anchor", "句子1", "问题1", "文本1")
SECOND_HINTS = ("sentence2", "sentence_2", "sentence_b", "question2", "question_2", "text_b", "text2", "hypothesis",
                "passage", "positive", "句子2", "问题2", "文本2")
PAIR_ROLES = (Role("text_a", "first text", FIRST_HINTS), Role("text_b", "second text", SECOND_HINTS))


def pair_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if any(name_hint(c, role.hints) for role in PAIR_ROLES)]


def has_pair_columns(frame: pd.DataFrame) -> bool:
    return all(any(name_hint(c, role.hints) for c in frame.columns) for role in PAIR_ROLES)


class PairInputs:
    """Two text roles encoded as one tokenizer pair; mixed into a classification or a regression task."""

    def encode_inputs(self, tokenizer, rows: dict[str, list[str]], max_length: int) -> dict:
        encoded = tokenizer(rows["text_a"], rows["text_b"], truncation="longest_first", max_length=max_length)
        return {key: encoded[key] for key in ("input_ids", "token_type_ids") if key in encoded}

    def classical_matrix(self, features, data):
        from .classical import pair_features

        return pair_features(features, data.inputs["text_a"], data.inputs["text_b"])


class PairClassification(PairInputs, Classification):
    name = "pairs"
    roles = (*PAIR_ROLES, Classification.roles[1])
    view = TaskView("Sentence pairs (class)", "句子对（分类）", ("text_a", "text_b"), CLASS_CARDS, "confusion",
                    "Per-class metrics")

    def recognises(self, frame: pd.DataFrame) -> bool:
        return has_pair_columns(frame)


class PairRegression(PairInputs, Regression):
    name = "pair_regression"
    roles = (*PAIR_ROLES, Regression.roles[1])
    view = TaskView("Sentence pairs (similarity score)", "句子对（相似度打分）", ("text_a", "text_b"), REGRESSION_CARDS, "scatter")

    def recognises(self, frame: pd.DataFrame) -> bool:
        used = pair_columns(frame)
        return has_pair_columns(frame) and any(looks_like_scores(as_strings(frame[c]))
                                               for c in frame.columns if c not in used)
