"""Data-quality report: duplicates, conflicting labels, train/validation leakage, class imbalance, short and
truncated texts, label spellings and language, each with a count, examples and a safe fix where there is one.

Rows are compared by their *key* (``core.data.dedup``): every text the model reads, Unicode-normalised, case-folded
and with whitespace collapsed. Near duplicates are found with MinHash LSH (``datasketch``) on character 5-grams and
confirmed by their exact Jaccard similarity.
"""
from __future__ import annotations

import logging
import re
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

from ..data.dedup import deduplicate, exact_copies, input_roles, keep_rows, normalise, row_keys, target_key
from ..models.language import HIGH_UNK_RATE, ModelSuggestion
from ..models.registry import load_tokenizer
from ..tasks.base import Task
from ..tasks.types import TaskData

NEAR_THRESHOLD = 0.8  # Jaccard similarity of character 5-grams above which two texts are near duplicates
NUM_PERM = 64
SHINGLE = 5
SHORT_CHARS = 3  # fewer letters or digits than this: a very short text
LONG_ENOUGH = re.compile(r"[^\W_]" + r".*?[^\W_]" * (SHORT_CHARS - 1), re.DOTALL)
IMBALANCE_RATIO = 5.0  # largest / smallest class above this: imbalanced
LENGTH_SAMPLE = 5000  # rows tokenised to estimate lengths
MAX_EXAMPLES = 5
OK, INFO, WARNING = "ok", "info", "warning"


@dataclass
class Finding:
    """One check: how many rows it flags, a sentence, examples, and the name of a safe fix (see ``apply_fix``)."""

    key: str
    title: str
    count: int
    detail: str
    examples: list[dict] = field(default_factory=list)
    fix: str | None = None
    severity: str = WARNING

    def __post_init__(self):
        if self.count == 0 and self.severity == WARNING:
            self.severity = OK


@dataclass
class QualityReport:
    rows: int
    findings: list[Finding]
    seconds: float

    def get(self, key: str) -> Finding:
        return next(f for f in self.findings if f.key == key)

    @property
    def fixes(self) -> list[str]:
        return [f.fix for f in self.findings if f.fix and f.count]

    def to_dict(self) -> dict:
        return asdict(self)


# -- rows as shown ---------------------------------------------------------------
def shown_target(data: TaskData, target) -> str:
    if data.label_names:
        return "|".join(data.label_names[i] for i in target) if isinstance(target, list) else data.label_names[target]
    return " ".join(map(str, target)) if isinstance(target, list) else str(target)


def shown_text(data: TaskData, i: int, limit: int = 160) -> str:
    text = " / ".join(normalise(data.inputs[r][i]) if isinstance(data.inputs[r][i], list) else str(data.inputs[r][i])
                      for r in input_roles(data))
    return text[:limit] + ("…" if len(text) > limit else "")


# -- duplicates -----------------------------------------------------------------
def conflicting_groups(keys: list[str], targets: list) -> list[list[int]]:
    """Row indices of each key seen with more than one target."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    return [rows for rows in groups.values() if len({target_key(targets[i]) for i in rows}) > 1]


def shingle_hashes(keys: list[str]) -> list[np.ndarray]:
    """32-bit hashes of each key's character 5-grams (a polynomial hash over all keys at once)."""
    padded = [key.ljust(SHINGLE) for key in keys]
    lengths = np.array([len(key) for key in padded])
    codes = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    width = len(codes) - SHINGLE + 1
    hashes = np.zeros(width, dtype=np.uint64)
    for k in range(SHINGLE):
        hashes = hashes * np.uint64(1_000_003) + codes[k:k + width]
    owner = np.repeat(np.arange(len(keys)), lengths)
    inside = owner[:width] == owner[SHINGLE - 1:]  # the 5-gram does not run into the next key
    return np.split(hashes[inside] & np.uint64(0xFFFFFFFF), np.cumsum(lengths - SHINGLE + 1)[:-1])


def near_pairs(keys: list[str]) -> list[tuple[int, int, float]]:
    """(i, j, Jaccard) for distinct keys whose 5-gram Jaccard similarity is at least NEAR_THRESHOLD."""
    from datasketch import MinHash, MinHashLSH

    shingled = [h.tolist() for h in shingle_hashes(keys)]
    hashes = MinHash.bulk(shingled, num_perm=NUM_PERM, hashfunc=int)
    lsh = MinHashLSH(threshold=NEAR_THRESHOLD, num_perm=NUM_PERM)
    with lsh.insertion_session() as session:
        for i, h in enumerate(hashes):
            session.insert(i, h)
    sets: dict[int, set[int]] = {}
    pairs = []
    for i, h in enumerate(hashes):
        for j in lsh.query(h):
            if j > i and keys[i] != keys[j]:
                a, b = (sets.setdefault(x, set(shingled[x])) for x in (i, j))
                similarity = len(a & b) / len(a | b)
                if similarity >= NEAR_THRESHOLD:
                    pairs.append((i, j, similarity))
    return pairs


def clusters(pairs: list[tuple[int, int, float]]) -> list[set[int]]:
    """Connected groups of near-duplicate rows (union-find)."""
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j, _ in pairs:
        parent[root(i)] = root(j)
    groups: dict[int, set[int]] = defaultdict(set)
    for x in list(parent):
        groups[root(x)].add(x)
    return list(groups.values())


# -- the report -----------------------------------------------------------------
def inspect(task: Task, data: TaskData, model: str | None = None, max_length: int = 128,
            val_fraction: float = 0.2, seed: int = 42, suggestion: ModelSuggestion | None = None) -> QualityReport:
    """Every check on a task's cleaned rows, for ``model`` at ``max_length`` and the run's split settings."""
    started = time.time()
    if not task.modality.text_checks:  # duplicates, near duplicates, leakage, lengths and language
        return QualityReport(len(data), [imbalance_finding(task, data), label_spelling_finding(data)],
                             time.time() - started)
    keys = row_keys(data)
    suggestion = suggestion or task.modality.suggest(task, data)
    model = model or suggestion.model
    findings = [duplicate_finding(data, keys), conflict_finding(task, data, keys)]
    first_rows: dict[str, int] = {}
    for i, key in enumerate(keys):
        first_rows.setdefault(key, i)
    unique_rows = list(first_rows.values())
    pairs = [(unique_rows[i], unique_rows[j], s) for i, j, s in near_pairs([keys[r] for r in unique_rows])]
    findings += [near_finding(data, pairs), leakage_finding(task, data, keys, pairs, val_fraction, seed)]
    if data.label_names and not task.per_token:  # tags such as O always outnumber the rest
        findings += [imbalance_finding(task, data), label_spelling_finding(data)]
    findings += [short_finding(data, keys), truncation_finding(task, data, model, max_length),
                 language_finding(suggestion, model)]
    return QualityReport(len(data), findings, time.time() - started)


def duplicate_finding(data: TaskData, keys: list[str]) -> Finding:
    copies = exact_copies(keys, data.targets)
    return Finding("exact_duplicates", "Exact duplicates", len(copies),
                   f"{len(copies):,} row(s) repeat an earlier row's text and label (after case and whitespace "
                   "are ignored). They over-weight those texts in training.",
                   [{"text": shown_text(data, i), "label": shown_target(data, data.targets[i])}
                    for i in copies[:MAX_EXAMPLES]], fix="drop_duplicates")


def conflict_finding(task: Task, data: TaskData, keys: list[str]) -> Finding:
    groups = conflicting_groups(keys, data.targets)
    rows = sum(len(g) for g in groups)
    target = task.roles[-1].label
    return Finding("conflicting_labels", f"Same text, conflicting {target}", len(groups),
                   f"{len(groups):,} text(s) appear more than once with a different {target} ({rows:,} rows). The "
                   "model cannot learn both; check which is right.",
                   [{"text": shown_text(data, g[0]),
                     "given": ", ".join(sorted({shown_target(data, data.targets[i]) for i in g}))}
                    for g in groups[:MAX_EXAMPLES]], fix="drop_conflicts")


def near_finding(data: TaskData, pairs: list[tuple[int, int, float]]) -> Finding:
    groups = clusters(pairs)
    extra = sum(len(g) - 1 for g in groups)
    return Finding("near_duplicates", "Near duplicates", extra,
                   f"{extra:,} row(s) are near copies of another text (≥ {NEAR_THRESHOLD:.0%} of character "
                   f"5-grams shared) in {len(groups):,} group(s): retweets, templates, small edits.",
                   [{"text": shown_text(data, i), "near": shown_text(data, j),
                     "similarity": round(s, 3)} for i, j, s in sorted(pairs, key=lambda p: -p[2])[:MAX_EXAMPLES]],
                   severity=INFO)


def leakage_finding(task: Task, data: TaskData, keys: list[str], pairs, val_fraction: float, seed: int) -> Finding:
    """Validation rows (under the run's split, before deduplication) with an exact or near copy in training."""
    train, val = task.split(indexed(data), val_fraction, seed)
    train_rows, val_rows = set(train.inputs["_row"]), val.inputs["_row"]
    train_keys = {keys[i] for i in train_rows}
    exact = [i for i in val_rows if keys[i] in train_keys]
    neighbours: dict[int, set[int]] = defaultdict(set)
    for i, j, _ in pairs:
        neighbours[i].add(j)
        neighbours[j].add(i)
    key_rows: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        key_rows[key].append(i)
    near = [i for i in val_rows if keys[i] not in train_keys
            and any(r in train_rows for n in neighbours[key_rows[keys[i]][0]] for r in key_rows[keys[n]])]
    return Finding("leakage", "Train/validation leakage", len(exact) + len(near),
                   f"With a random split, {len(exact):,} validation row(s) have an exact copy and {len(near):,} a "
                   "near copy among the training rows, which inflates validation scores. Copies with the same label "
                   "are dropped before the split while 'Deduplicate before splitting' is on (the default).",
                   [{"text": shown_text(data, i), "copy": "exact" if i in exact else "near"}
                    for i in (exact + near)[:MAX_EXAMPLES]], fix="drop_duplicates" if exact else None)


def indexed(data: TaskData) -> TaskData:
    """The same rows with their position as an extra input, to see where a split puts each."""
    return TaskData({**data.inputs, "_row": list(range(len(data)))}, data.targets, data.columns, data.label_names)


def imbalance_finding(task: Task, data: TaskData) -> Finding:
    counts = task.balance(data) or {}
    ordered = sorted(counts.items(), key=lambda kv: kv[1])
    smallest, largest = ordered[0][1], ordered[-1][1]
    ratio = largest / max(smallest, 1)
    imbalanced = ratio >= IMBALANCE_RATIO
    return Finding("class_imbalance", "Class imbalance", sum(1 for _, n in ordered if largest / max(n, 1) >= IMBALANCE_RATIO),
                   f"The largest class has {ratio:.1f}x the rows of the smallest ({largest:,} vs {smallest:,}). "
                   + ("Macro-F1 (the primary metric) weighs each class equally; add rows to the small classes."
                      if imbalanced else "That is balanced enough."),
                   [{"class": name, "rows": n} for name, n in ordered[:MAX_EXAMPLES]] if imbalanced else [],
                   severity=WARNING if imbalanced else OK)


def label_spelling_finding(data: TaskData) -> Finding:
    groups: dict[str, list[str]] = defaultdict(list)
    for name in data.label_names:
        groups[normalise(name)].append(name)
    variants = [names for names in groups.values() if len(names) > 1]
    return Finding("label_variants", "Labels that differ only by case or spacing", sum(len(v) - 1 for v in variants),
                   f"{len(variants):,} label(s) are spelt in more than one way and count as different classes.",
                   [{"spellings": ", ".join(repr(n) for n in v)} for v in variants[:MAX_EXAMPLES]],
                   fix="merge_label_variants")


def language_finding(suggestion, model: str) -> Finding:
    unreadable = suggestion.unknown_rates.get(model, 0.0) > HIGH_UNK_RATE
    return Finding("language", "Language and unknown tokens", int(unreadable), suggestion.message(),
                   severity=WARNING if unreadable else INFO)


def short_finding(data: TaskData, keys: list[str]) -> Finding:
    short = [i for i, key in enumerate(keys) if not LONG_ENOUGH.search(key)]
    return Finding("short_texts", "Very short texts", len(short),
                   f"{len(short):,} row(s) have fewer than {SHORT_CHARS} letters or digits; {data.rows_dropped:,} row(s) "
                   "with an empty text or label were already left out.",
                   [{"text": shown_text(data, i), "label": shown_target(data, data.targets[i])}
                    for i in short[:MAX_EXAMPLES]], severity=INFO if short else OK)


def truncation_finding(task: Task, data: TaskData, model: str, max_length: int) -> Finding:
    """Share of rows longer than ``max_length`` tokens for ``model`` (a sample of LENGTH_SAMPLE rows)."""
    rows = np.random.default_rng(0).permutation(len(data))[:LENGTH_SAMPLE] if len(data) > LENGTH_SAMPLE \
        else np.arange(len(data))
    sample = data.subset(rows.tolist())
    try:
        tokenizer = load_tokenizer(model)
    except Exception as exc:  # a model not converted yet, or a folder without a tokenizer
        return Finding("truncated", "Texts longer than the max length", 0,
                       f"Lengths not measured: the tokenizer of {model} is not available ({type(exc).__name__}).",
                       severity=INFO)
    logging.getLogger("transformers.tokenization_utils_base").setLevel(logging.ERROR)
    lengths = np.array([len(ids) for ids in task.encode(tokenizer, sample, 10**6, task.fit(sample)).input_ids])
    over = float((lengths > max_length).mean())
    share = f"{over:.1%} of rows" + (f" (of a sample of {len(rows):,})" if len(rows) < len(data) else "")
    order = np.argsort(-lengths)[:MAX_EXAMPLES]
    return Finding("truncated", "Texts longer than the max length", int(round(over * len(data))),
                   f"{share} are longer than {max_length} tokens for {model.split('/')[-1]} and will be cut; "
                   f"median {int(np.median(lengths))}, 95th percentile {int(np.percentile(lengths, 95))} tokens.",
                   [{"text": shown_text(sample, int(i)), "tokens": int(lengths[i])}
                    for i in order if lengths[i] > max_length], severity=WARNING if over > 0.1 else INFO)


# -- fixes ----------------------------------------------------------------------
FIX_TITLES = {"drop_duplicates": "Drop exact duplicates", "drop_conflicts": "Drop rows with conflicting labels",
              "merge_label_variants": "Merge label spellings"}


def apply_fix(data: TaskData, fix: str) -> tuple[TaskData, str]:
    """The rows after one safe fix, and what it did."""
    if fix == "drop_duplicates":
        kept, dropped = deduplicate(data)
        return kept, f"Dropped {dropped:,} duplicate row(s)."
    if fix == "drop_conflicts":
        drop = {i for group in conflicting_groups(row_keys(data), data.targets) for i in group}
        return keep_rows(data, drop), f"Dropped {len(drop):,} row(s) whose text has conflicting labels."
    if fix == "merge_label_variants":
        return merge_label_variants(data)
    raise ValueError(f"unknown fix {fix!r}")


def merge_label_variants(data: TaskData) -> tuple[TaskData, str]:
    """Every spelling of a label mapped to its most frequent one."""
    counts = Counter(i for t in data.targets for i in (t if isinstance(t, list) else [t]))
    groups: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(data.label_names):
        groups[normalise(name)].append(i)
    kept = {spelling: min(g, key=lambda i: (-counts[i], i)) for spelling, g in groups.items()}
    names = sorted(data.label_names[i] for i in kept.values())
    new_index = {old: names.index(data.label_names[kept[spelling]]) for spelling, g in groups.items() for old in g}
    targets = [sorted({new_index[i] for i in t}) if isinstance(t, list) else new_index[t] for t in data.targets]
    merged = len(data.label_names) - len(names)
    return (TaskData(data.inputs, targets, data.columns, names, data.rows_total, data.rows_dropped, data.warnings),
            f"Merged {merged:,} label spelling(s).")
