"""Token classification (NER): a tag per word; the first sub-token of a word carries its tag, the rest -100.

Accepts BIO (IOB2), IOB1, BIOES/BILOU and BMES tags and normalises them to IOB2. Entity-level metrics
come from seqeval; prediction returns entity spans with character offsets.
"""
from __future__ import annotations

import ast
import json
import re
from collections import Counter

import numpy as np
import pandas as pd
from transformers import AutoModelForTokenClassification

from ..common.errors import DataError
from ..data.tables import name_hint
from .base import Task
from .classification import softmax
from .metrics import entity_metrics
from .outputs import SPANS
from .types import Encoded, Prediction, Role, Scored, TaskData, TaskView

TOKEN_HINTS = ("tokens", "words", "token", "word", "chars", "characters", "sentence", "text", "词", "字")
TAG_HINTS = ("tags", "ner_tags", "ner", "tag", "labels", "label", "entities", "标签")
NER_CARDS = (("f1", "entity F1"), ("entity_precision", "precision"), ("entity_recall", "recall"), ("f1_strict", "F1 (strict IOB2)"),
             ("token_accuracy", "token accuracy"))
PREFIXES = {"B": "B", "I": "I", "M": "I", "E": "E", "L": "E", "S": "S", "U": "S"}
WORD = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W\u3400-\u9fff\uf900-\ufaff]+|[^\w\s]")


def parse_list(cell) -> list[str]:
    """A list cell: a real list, a JSON or Python list literal, or space-separated items."""
    if isinstance(cell, (list, tuple, np.ndarray)):
        return [str(x) for x in cell]
    text = "" if cell is None or (isinstance(cell, float) and np.isnan(cell)) else str(cell).strip()
    if text.startswith("["):
        try:
            return [str(x) for x in json.loads(text)]
        except ValueError:
            try:
                return [str(x) for x in ast.literal_eval(text)]
            except (ValueError, SyntaxError):
                raise DataError(f"The cell {text[:40]!r} is not a valid list, e.g. [\"John\", \"lives\"].")
    return text.split()


def is_list_column(values: pd.Series) -> bool:
    sample = values.dropna().head(50)
    return len(sample) > 0 and sample.map(lambda v: isinstance(v, (list, tuple)) or str(v).strip().startswith("[")).mean() > 0.9


def to_iob2(tags: list[str]) -> tuple[list[str], set[str]]:
    """IOB1/IOB2/BIOES/BILOU/BMES tags as IOB2, and the prefixes seen. An I/M/E tag continues an open
    entity of its type, else starts one (IOB1, or an entity cut by a sentence split); E and S close it."""
    out, seen, open_type = [], set(), None
    for tag in tags:
        if tag == "O":
            out.append("O")
            open_type = None
            continue
        match = re.fullmatch(r"([A-Za-z])[-_](.+)", tag)
        if not match or match.group(1).upper() not in PREFIXES:
            raise DataError(f"The tag '{tag}' has an unknown prefix: use O, or B-/I- (also E-, S-, M-) before the "
                            "entity type, e.g. B-PER.")
        raw, kind = match.group(1).upper(), match.group(2)
        prefix = PREFIXES[raw]
        starts_inside = prefix not in "BS" and open_type != kind  # IOB1 with I-, or a fragment cut mid-entity
        seen.add(("I-start" if raw == "I" else "cut") if starts_inside else prefix)
        out.append("I-" + kind if prefix in "IE" and open_type == kind else "B-" + kind)
        open_type = None if prefix in "ES" else kind
    return out, seen


def scheme_name(prefixes: set[str]) -> str:
    if prefixes & {"E", "S"}:
        if "I-start" in prefixes:
            raise DataError("The file mixes tag schemes: some entities end with E-/S- tags (BIOES/BMES) while others "
                            "start with an I- tag (IOB1). Use one scheme throughout.")
        return "BIOES/BMES"
    return "IOB1" if "I-start" in prefixes else "BIO"


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Words of raw text with character offsets: one per CJK character, runs of letters/digits, punctuation."""
    found = list(WORD.finditer(text))
    return [m.group() for m in found], [m.span() for m in found]


def word_starts(word_ids: list[int | None], n_words: int) -> list[int]:
    """Position of each word's first sub-token (-1: the word got no token, e.g. cut by the max length)."""
    starts = [-1] * n_words
    for position, word in enumerate(word_ids):
        if word is not None and starts[word] == -1:
            starts[word] = position
    return starts


def encode_words(tokenizer, rows: list[list[str]], max_length: int) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of pre-split words and each word's first sub-token position (-1: cut by the max length).

    SentencePiece tokenizers (XLM-R, multilingual-e5) put a bare word-start piece "▁" before every word
    that no piece begins with, which for per-character Chinese is every character: twice the tokens, and the
    tag on a piece that says nothing. That bare piece is dropped where the word has another piece, which
    gives the tokens running Chinese text has."""
    bare = tokenizer.convert_tokens_to_ids("▁")
    bare = None if bare in (None, tokenizer.unk_token_id) else bare
    encoded = tokenizer(rows, is_split_into_words=True, truncation=False)
    all_ids, all_starts = [], []
    for row, words in enumerate(rows):
        ids, word_ids = encoded["input_ids"][row], encoded.word_ids(row)
        keep = [i for i, token in enumerate(ids) if not (
            token == bare and i + 1 < len(ids) and word_ids[i] is not None and word_ids[i + 1] == word_ids[i])]
        if len(keep) > max_length:  # cut as truncation does, keeping the closing special token
            keep = keep[:max_length - 1] + [keep[-1]] if word_ids[keep[-1]] is None else keep[:max_length]
        all_ids.append([ids[i] for i in keep])
        all_starts.append(word_starts([word_ids[i] for i in keep], len(words)))
    return all_ids, all_starts


class TokenClassification(Task):
    name = "token_classification"
    roles = (Role("tokens", "tokens", TOKEN_HINTS, text=False), Role("tags", "tags", TAG_HINTS, text=False))
    view = TaskView("Entities in text (NER)", "命名实体识别（NER）", ("text",), NER_CARDS, "per_label", "Per-entity-type metrics")
    output = SPANS
    primary_metric = "f1"
    classical_name = "CRF on word features"
    augmentations = ("entities",)
    model_class = AutoModelForTokenClassification
    peft_task = "TOKEN_CLS"
    per_token = True

    def guess_role(self, frame, role, chosen):
        lists = [c for c in frame.columns if is_list_column(frame[c])]
        if not lists:
            raise DataError("No column holds lists of tokens and tags. Upload a CoNLL file (token TAB tag, a blank "
                            "line between sentences), JSONL with 'tokens' and 'tags' lists, or a CSV of such lists.")
        return lists[0]

    def recognises(self, frame: pd.DataFrame) -> bool:
        return all(any(name_hint(c, role.hints) and is_list_column(frame[c]) for c in frame.columns)
                   for role in self.roles)

    def build(self, frame: pd.DataFrame, columns: dict[str, str]) -> TaskData:
        tokens = frame[columns["tokens"]].map(parse_list).tolist()
        tags = frame[columns["tags"]].map(parse_list).tolist()
        rows = [i for i, (t, g) in enumerate(zip(tokens, tags)) if t or g]
        uneven = [i for i in rows if len(tokens[i]) != len(tags[i])]
        if uneven:
            first = uneven[0]
            raise DataError(f"{len(uneven):,} sentence(s) have different numbers of tokens and tags; the first is "
                            f"row {first + 1}: {len(tokens[first])} tokens, {len(tags[first])} tags.")
        normalised, prefixes = [], set()
        for i in rows:
            try:
                iob2, seen = to_iob2([g.strip() for g in tags[i]])
            except DataError as exc:
                raise DataError(f"Row {i + 1}: {exc.message}")
            normalised.append(iob2)
            prefixes |= seen
        scheme = scheme_name(prefixes)
        kinds = sorted({tag[2:] for row in normalised for tag in row if tag != "O"})
        if not kinds:
            raise DataError("No sentence has an entity tag; every tag is O.")
        names = ["O"] + [f"{p}-{k}" for k in kinds for p in "BI"]
        index = {name: i for i, name in enumerate(names)}
        warnings = [] if scheme == "BIO" else [f"Tags were in the {scheme} scheme; converted to BIO (IOB2)."]
        return TaskData({"tokens": [tokens[i] for i in rows]}, [[index[t] for t in row] for row in normalised],
                        columns, names, rows_total=len(frame), rows_dropped=len(frame) - len(rows), warnings=warnings)

    def to_frame(self, data: TaskData) -> pd.DataFrame:
        names = data.label_names
        return pd.DataFrame({"tokens": [json.dumps(t, ensure_ascii=False) for t in data.inputs["tokens"]],
                             "tags": [json.dumps([names[i] for i in row]) for row in data.targets]})

    def texts(self, data: TaskData) -> list[str]:
        return [" ".join(tokens) for tokens in data.inputs["tokens"]]

    def describe(self, data: TaskData) -> str:
        counts = self.balance(data)
        shown = ", ".join(f"{k} {v:,}" for k, v in counts.items())
        return (f"{len(data):,} sentences kept, {data.rows_dropped:,} empty dropped · tokens <b>{data.columns['tokens']}"
                f"</b> · tags <b>{data.columns['tags']}</b> · entities: {shown}")

    def balance(self, data: TaskData) -> dict[str, int]:
        names = data.label_names
        counts = Counter(names[i][2:] for row in data.targets for i in row if names[i].startswith("B-"))
        return dict(sorted(counts.items()))

    def encode(self, tokenizer, data: TaskData, max_length: int, state: dict) -> Encoded:
        if not tokenizer.is_fast:
            raise DataError("Entity tagging needs a model with a fast tokenizer (to map words to sub-tokens).")
        ids, starts = encode_words(tokenizer, data.inputs["tokens"], max_length)
        labels = []
        for row_ids, first, tags in zip(ids, starts, data.targets):
            row_labels = [-100] * len(row_ids)
            for word, position in enumerate(first):
                if position >= 0:
                    row_labels[position] = tags[word]
            labels.append(row_labels)
        return Encoded(ids, labels, per_token=True, extras={"word_starts": starts})

    def encoding_warnings(self, encoded: Encoded, data: TaskData) -> list[str]:
        """Words that did not fit in the max length are cut; say how many and how many entities they held."""
        cut_rows = cut_words = cut_entities = 0
        names = data.label_names
        for starts, tags, ids in zip(encoded.extras["word_starts"], data.targets, encoded.input_ids):
            last = max((w for w, p in enumerate(starts) if p >= 0), default=-1)
            lost = range(last + 1, len(starts))
            if lost and len(ids) > 2 and any(p < 0 for p in starts[last + 1:]):
                cut_rows, cut_words = cut_rows + 1, cut_words + len(lost)
                cut_entities += sum(names[tags[w]].startswith("B-") for w in lost)
        if not cut_rows:
            return []
        return [f"{cut_rows:,} sentence(s) are longer than the max length: {cut_words:,} words cut, holding "
                f"{cut_entities:,} entities that the model never sees (they count as missed in the metrics). "
                "Raise the max length to keep them."]

    def predicted_tags(self, outputs, starts_per_row, names) -> tuple[list[list[str]], list[list[float]]]:
        tags, scores = [], []
        for logits, starts in zip(outputs, starts_per_row):
            probs = softmax(logits)
            tags.append([names[int(probs[p].argmax())] if p >= 0 else "O" for p in starts])
            scores.append([float(probs[p].max()) if p >= 0 else 0.0 for p in starts])
        return tags, scores

    def score(self, outputs, val, encoded, state) -> Scored:
        names = val.label_names
        truth = [[names[i] for i in row] for row in val.targets]
        predicted, _ = self.predicted_tags(outputs, encoded.extras["word_starts"], names)
        frame = pd.DataFrame({"text": self.texts(val), "label": [entities_text(t, r) for t, r in
                                                                  zip(val.inputs["tokens"], truth)],
                              "predicted": [entities_text(t, p) for t, p in zip(val.inputs["tokens"], predicted)]})
        return Scored(entity_metrics(truth, predicted), frame)

    def baseline(self, train, val, state) -> dict:
        """Each word's most frequent training tag (O for unseen words)."""
        names = train.label_names
        seen: dict[str, Counter] = {}
        for tokens, tags in zip(train.inputs["tokens"], train.targets):
            for word, tag in zip(tokens, tags):
                seen.setdefault(word.lower(), Counter())[names[tag]] += 1
        predicted = [[seen[w.lower()].most_common(1)[0][0] if w.lower() in seen else "O" for w in tokens]
                     for tokens in val.inputs["tokens"]]
        truth = [[names[i] for i in row] for row in val.targets]
        metrics = entity_metrics(truth, [to_iob2(row)[0] for row in predicted])
        return {"name": "most frequent tag per word", **{k: v for k, v in metrics.items() if k != "per_class"}}

    def classical_baseline(self, train, val, state) -> dict:
        from .classical import crf_tags

        names = train.label_names
        predicted = crf_tags(train.inputs["tokens"], [[names[i] for i in row] for row in train.targets],
                             val.inputs["tokens"])
        truth = [[names[i] for i in row] for row in val.targets]
        metrics = entity_metrics(truth, [to_iob2(row)[0] for row in predicted])
        return {k: v for k, v in metrics.items() if k != "per_class"}

    def encode_inputs(self, tokenizer, rows: dict[str, list[str]], max_length: int) -> dict:
        split = [split_words(text) for text in rows["text"]]
        ids, starts = encode_words(tokenizer, [words or [""] for words, _ in split], max_length)
        return {"input_ids": ids, "text": rows["text"], "offsets": [o for _, o in split], "word_starts": starts}

    def format(self, outputs, features, model_config) -> list[Prediction]:
        from seqeval.metrics.sequence_labeling import get_entities

        names = [model_config.id2label[i] for i in range(len(model_config.id2label))]
        tags, scores = self.predicted_tags(outputs, features["word_starts"], names)
        results = []
        for text, offsets, row_tags, row_scores in zip(features["text"], features["offsets"], tags, scores):
            spans = [{"entity": kind, "start": offsets[a][0], "end": offsets[b][1],
                      "text": text[offsets[a][0]:offsets[b][1]], "score": round(float(np.mean(row_scores[a:b + 1])), 4)}
                     for kind, a, b in get_entities(row_tags)]
            results.append(Prediction(spans=spans))
        return results


def entities_text(tokens: list[str], tags: list[str]) -> str:
    """'PER: John Smith; LOC: Paris' for a sentence (CJK characters joined without spaces)."""
    from seqeval.metrics.sequence_labeling import get_entities

    joiner = "" if tokens and all(len(t) == 1 for t in tokens) else " "
    return "; ".join(f"{kind}: {joiner.join(tokens[a:b + 1])}" for kind, a, b in get_entities(tags))
