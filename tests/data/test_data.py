"""Parsing, column guessing, label mapping, splitting and every bad input."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from core.common.errors import DataError
from core.data.tables import DataLimits, read_table
from core.models.language import unknown_token_rate
from core.tasks import get_task, prepare_data

CHINESE_ROWS = [("这是一个非常好的产品，我非常喜欢它。", "正面"), ("质量太差了，完全不能用。", "负面"),
                ("服务很好，下次还会再来。", "正面"), ("非常失望，浪费钱。", "负面")] * 3


def write(tmp_path, name, data: bytes | str, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


def chinese_csv(sep=","):
    return "评论" + sep + "标签\n" + "".join(f"{t}{sep}{l}\n" for t, l in CHINESE_ROWS)


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8", "utf-8-sig"])
def test_chinese_csv_in_common_encodings(tmp_path, encoding):
    frame = read_table(write(tmp_path, "zh.csv", chinese_csv(), encoding))
    assert list(frame.columns) == ["评论", "标签"]
    data = prepare_data("classification", frame)
    assert data.columns == {"text": "评论", "label": "标签"}
    assert data.texts[0] == CHINESE_ROWS[0][0]
    assert data.label_names == ["正面", "负面"] or set(data.label_names) == {"正面", "负面"}


def test_utf16_csv(tmp_path):
    frame = read_table(write(tmp_path, "u16.csv", chinese_csv(), "utf-16"))
    assert frame.iloc[1, 0] == CHINESE_ROWS[1][0]


@pytest.mark.parametrize("sep,suffix", [(";", ".csv"), ("\t", ".tsv"), ("\t", ".csv"), ("|", ".txt")])
def test_delimiters(tmp_path, sep, suffix):
    frame = read_table(write(tmp_path, "d" + suffix, chinese_csv(sep)))
    assert frame.shape == (len(CHINESE_ROWS), 2)


def test_quoted_newlines_and_commas(tmp_path):
    text = 'text,label\n"line one,\nline two",a\n"plain",b\n"x",a\n"y",b\n'
    frame = read_table(write(tmp_path, "q.csv", text))
    assert frame.iloc[0, 0] == "line one,\nline two"


def test_jsonl_and_json_and_excel(tmp_path):
    rows = [{"text": t, "label": l} for t, l in CHINESE_ROWS]
    jsonl = write(tmp_path, "a.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    assert read_table(jsonl).shape == (12, 2)
    assert read_table(write(tmp_path, "a.json", json.dumps(rows))).shape == (12, 2)
    xlsx = tmp_path / "a.xlsx"
    with pd.ExcelWriter(xlsx) as writer:
        pd.DataFrame().to_excel(writer, sheet_name="empty")
        pd.DataFrame(rows).to_excel(writer, sheet_name="data", index=False)
    assert prepare_data("classification", read_table(xlsx)).columns["label"] == "label"


def test_guess_columns_prefers_long_text_and_few_labels():
    frame = pd.DataFrame({"id": [str(i) for i in range(8)], "category": list("abababab"),
                          "body": [f"a long piece of text number {i}" for i in range(8)], "score": list("12345678")})
    assert get_task("classification").guess_columns(frame, {}) == {"text": "body", "label": "category"}


def test_label_mapping_numbers_and_strings_are_one_label():
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(6)], "label": ["1", "0", "1.0", "0", "1", "0.0"]})
    data = prepare_data("classification", frame)
    assert data.label_names == ["0", "1"]
    assert data.labels == [1, 0, 1, 0, 1, 0]


def test_drops_empty_rows_and_reports_count():
    frame = pd.DataFrame({"text": ["a text", "", "another", None, "more", "again", "x y"],
                          "label": ["p", "n", None, "p", "n", "p", "n"]})
    data = prepare_data("classification", frame, {"text": "text", "label": "label"})
    assert len(data) == 4 and data.rows_dropped == 3 and data.rows_total == 7


def test_split_is_stratified_and_seeded():
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(100)], "label": ["a"] * 80 + ["b"] * 20})
    data = prepare_data("classification", frame)
    train, val = get_task("classification").split(data, 0.2, seed=1)
    assert len(val) == 20 and val.class_counts() == {"a": 16, "b": 4}
    again, _ = get_task("classification").split(data, 0.2, seed=1)
    assert train.texts == again.texts
    other, _ = get_task("classification").split(data, 0.2, seed=2)
    assert other.texts != train.texts


def test_unknown_token_rate_flags_chinese_for_english_model():
    from transformers import AutoTokenizer

    from core.models.registry import DEFAULT_MODEL, REGISTRY

    tok = AutoTokenizer.from_pretrained(REGISTRY[DEFAULT_MODEL].path())
    assert unknown_token_rate(tok, ["this is a very good product"]) == 0
    assert unknown_token_rate(tok, [t for t, _ in CHINESE_ROWS]) > 0.3


BAD_INPUTS = {
    "empty": (b"", "empty"),
    "whitespace": (b"  \n\n ", "empty"),
    "header only": (b"text,label\n", "no rows"),
    "png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "image"),
    "binary": (bytes(range(256)) * 4, "binary"),
    "one column": (b"text\nhello\nworld\n", "only 1 column"),
    "numbers only": (b"a,b\n1,2\n3,4\n5,6\n", "No column looks like text"),
    "single class": ("text,label\n" + "".join(f"sentence {i},same\n" for i in range(10)), "same label"),
    "rare class": ("text,label\n" + "".join(f"sentence {i},a\n" for i in range(10)) + "odd one,b\n", "fewer than 2"),
    "labels missing": ("text,label\n" + "".join(f"sentence {i},\n" for i in range(10)) + "x,a\ny,b\n", "empty on"),
    "ragged rows": (b'text,label\n"a",b\n"c",d,e,f\n', "same number of columns"),
    "broken jsonl": (b'{"text": "a", "label": "b"}\n{"text": \n', "Line 2"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_inputs_raise_one_clear_error(tmp_path, name):
    content, expected = BAD_INPUTS[name]
    suffix = ".jsonl" if "jsonl" in name else ".csv"
    path = write(tmp_path, f"bad{suffix}", content)
    with pytest.raises(DataError) as info:
        prepare_data("classification", read_table(path))
    assert expected.lower() in info.value.message.lower()
    assert "Traceback" not in info.value.message


def test_file_over_size_limit(tmp_path):
    path = write(tmp_path, "big.csv", "text,label\n" + "some words,a\n" * 2000)
    with pytest.raises(DataError, match="limit"):
        read_table(path, DataLimits(max_bytes=1000))


def test_missing_file_and_wrong_column(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    frame = pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]})
    with pytest.raises(DataError, match="not in the table"):
        prepare_data("classification", frame, {"text": "text", "label": "missing"})
