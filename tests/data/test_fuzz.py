"""Property-based fuzzing of every reader and task builder (hypothesis): whatever file a user uploads, the
readers and every task's ``prepare`` either return valid rows or raise a ``StudioError`` with a message.

CI runs a small seeded budget (FUZZ_EXAMPLES, default 60 per strategy); `make fuzz` runs 10,000.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.common.errors import StudioError
from core.data.tables import read_table
from core.tasks import TASKS, detect_task, prepare_data

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
FOLDER = Path(tempfile.mkdtemp(prefix="sft-fuzz-"))
SUFFIXES = (".csv", ".tsv", ".txt", ".jsonl", ".json", ".conll", ".bmes", ".xlsx")

words = st.sampled_from(["good", "bad", "B-PER", "I-LOC", "O", "3.5", "-1e9", "NaN", "inf", "N/A", "", " ", "中文",
                         "标签", "label", "text", "1", "0", '"', ",", "\t", "|", "[\"a\", \"b\"]", "[1, 2]", "\\"])
cells = st.one_of(words, st.text(max_size=30), st.text(min_size=2000, max_size=5000).map(lambda t: t * 20))
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
                           | st.text(max_size=20) | words,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                                      max_size=3), max_leaves=12)
headers = st.lists(st.sampled_from(["text", "label", "score", "sentence1", "sentence2", "tokens", "tags", "prompt",
                                    "response", "genres", "labels", "review", "", "a", "标签", "text"]),
                   min_size=1, max_size=5)


def outcome(path: Path) -> None:
    """The property: read, detect and prepare for every task; only StudioError may be raised, and kept rows
    have one target per input."""
    try:
        frame = read_table(path)
    except StudioError as exc:
        assert exc.message
        return
    for name in [detect_task(frame), *TASKS]:
        try:
            data = prepare_data(name, frame)
        except StudioError as exc:
            assert exc.message
            continue
        assert all(len(values) == len(data.targets) for values in data.inputs.values()), name
        if data.label_names:
            assert all(isinstance(t, (int, list)) for t in data.targets)
        if name in ("regression", "pair_regression"):
            assert all(math.isfinite(t) for t in data.targets), "a score that is not a finite number was kept"


def write(name: str, content: bytes) -> Path:
    path = FOLDER / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("suffix", SUFFIXES)
@FUZZ
@given(raw=st.binary(max_size=3000))
def test_random_bytes(suffix, raw):
    outcome(write(f"random{suffix}", raw))


@FUZZ
@given(header=headers, rows=st.lists(st.lists(cells, min_size=0, max_size=6), min_size=0, max_size=30),
       sep=st.sampled_from([",", "\t", ";", "|"]), encoding=st.sampled_from(["utf-8", "utf-16", "gb18030", "latin-1"]),
       cut=st.integers(min_value=0, max_value=50))
def test_delimited_tables(header, rows, sep, encoding, cut):
    def quoted(cell: str) -> str:
        return '"' + cell.replace('"', '""') + '"' if any(ch in cell for ch in (sep, '"', "\n")) else cell

    text = "\n".join(sep.join(quoted(c) for c in row) for row in [header, *rows])
    raw = text.encode(encoding, errors="replace")
    outcome(write("table.csv" if sep == "," else "table.tsv", raw[:len(raw) - cut] if cut else raw))


@FUZZ
@given(records=st.lists(st.dictionaries(st.sampled_from(["text", "label", "tokens", "tags", "score", "prompt",
                                                         "response", "sentence1", "sentence2"]), json_values,
                                        max_size=4) | json_values, max_size=25),
       as_lines=st.booleans())
def test_json_records(records, as_lines):
    text = "\n".join(json.dumps(r) for r in records) if as_lines else json.dumps(records)
    outcome(write("records.jsonl" if as_lines else "records.json", text.encode()))


@FUZZ
@given(sentences=st.lists(st.lists(st.tuples(st.sampled_from(["John", "Paris", "中", "国", "a", "", "-DOCSTART-"]),
                                              st.sampled_from(["B-PER", "I-PER", "O", "S-LOC", "M-ORG", "E-ORG",
                                                               "B-", "X", "", "B-LOC extra"])),
                                    min_size=1, max_size=8), max_size=12),
       sep=st.sampled_from([" ", "\t"]))
def test_conll_files(sentences, sep):
    text = "\n\n".join("\n".join(sep.join(part for part in pair if part) for pair in sentence)
                       for sentence in sentences)
    outcome(write("tokens.conll", text.encode()))


@FUZZ
@given(tokens=st.lists(json_values, min_size=1, max_size=20), tags=st.lists(json_values, min_size=1, max_size=20))
def test_token_and_tag_cells_of_any_shape(tokens, tags):
    """The NER case found on unseen data: list cells beside strings and numbers, counts that differ."""
    lines = [json.dumps({"tokens": a, "tags": b}) for a, b in zip(tokens, tags)]
    lines += [json.dumps({"tokens": ["John", "lives", "here"], "tags": ["B-PER", "O", "O"]})] * 3
    outcome(write("ner.jsonl", "\n".join(lines).encode()))
