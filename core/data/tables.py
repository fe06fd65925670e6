"""Read user tables (CSV/TSV/JSONL/Excel/CoNLL), guess the text column, check what a tokenizer can read."""
from __future__ import annotations

import codecs
import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from charset_normalizer import from_bytes

from ..common.errors import DataError

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_MAX_ROWS = 1_000_000
TEXT_NAME_HINTS = ("text", "sentence", "content", "review", "comment", "message", "tweet", "body",
                   "question", "document", "文本", "内容", "评论", "句子")
LABEL_NAME_HINTS = ("label", "labels", "class", "category", "sentiment", "target", "topic", "tag",
                    "y", "标签", "类别", "情感")
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls"}
JSON_SUFFIXES = {".jsonl", ".ndjson", ".json"}
CHINESE_ENCODINGS = {"gb2312", "gbk", "gb18030", "hz", "big5", "big5hkscs", "cp950", "cp936"}
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


@dataclass(frozen=True)
class DataLimits:
    """Upload limits: bytes on disk and rows after parsing."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_rows: int = DEFAULT_MAX_ROWS


def detect_encoding(raw: bytes) -> str:
    """Pick the text encoding: BOMs, then UTF-8, then GB18030 for Chinese, then a detector."""
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("gb18030")
        non_ascii = [c for c in text if ord(c) > 127]
        if non_ascii and sum(bool(CJK.match(c)) for c in non_ascii) / len(non_ascii) > 0.6:
            return "gb18030"
    except UnicodeDecodeError:
        pass
    best = from_bytes(raw[:500_000]).best()
    if best is None:
        return "latin-1"
    return "gb18030" if best.encoding.lower() in CHINESE_ENCODINGS else best.encoding


def _sniff_delimiter(text: str, suffix: str) -> str:
    if suffix in {".tsv", ".tab"}:
        return "\t"
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _looks_binary(raw: bytes) -> str | None:
    head = raw[:8]
    if head.startswith(b"\x89PNG"):
        return "an image (PNG)"
    if head[:3] == b"\xff\xd8\xff":
        return "an image (JPEG)"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive"
    if b"\x00" in raw[:4096] and not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "a binary file"
    return None


def _read_jsonl(text: str) -> pd.DataFrame:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise DataError(f"Line {number} of the JSON Lines file is not valid JSON; fix or remove it.")
        if not isinstance(row, dict):
            raise DataError(f"Line {number} of the JSON Lines file is not an object with named fields.")
        rows.append(row)
    return pd.DataFrame(rows)


def _read_excel(path: Path) -> pd.DataFrame:
    try:
        sheets = pd.read_excel(path, sheet_name=None, dtype=str)
    except Exception as exc:  # openpyxl/xlrd raise many unrelated types
        raise DataError(f"The Excel file could not be opened ({type(exc).__name__}).") from exc
    filled = {name: int(frame.notna().sum().sum()) for name, frame in sheets.items()}
    best = max(filled, key=filled.get, default=None)
    if best is None or filled[best] == 0 or sheets[best].dropna(how="all").empty:
        raise DataError("The Excel file has no sheet with rows in it.")
    return sheets[best]


def read_table(path: str | Path, limits: DataLimits = DataLimits()) -> pd.DataFrame:
    """Read a CSV/TSV/JSONL/Excel file into a DataFrame of strings (a CoNLL file into tokens/tags lists; a folder
    or zip of labelled images or sound clips into file paths and labels, see core.data.folders), or raise
    DataError."""
    from .folders import is_file_archive, read_labelled_folder, unpacked_folder

    path = Path(path)
    if path.is_dir():
        return read_labelled_folder(path, lambda table: read_table(table, limits))
    if not path.is_file():
        raise DataError(f"The file '{path.name}' does not exist.")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise DataError(f"The file is {size / 2**20:.1f} MB; the limit is "
                        f"{limits.max_bytes / 2**20:.0f} MB. Upload a smaller file.")
    suffix = path.suffix.lower()
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError("The file is empty.")
    if raw.startswith(b"PK\x03\x04") and is_file_archive(path):
        from ..models.registry import cache_root

        return read_labelled_folder(unpacked_folder(path, raw, cache_root()), lambda table: read_table(table, limits))
    if suffix in EXCEL_SUFFIXES or raw.startswith(b"PK\x03\x04") or raw.startswith(b"\xd0\xcf\x11\xe0"):
        frame = _read_excel(path)
    else:
        kind = _looks_binary(raw)
        if kind:
            raise DataError(f"This file looks like {kind}, not a table. Upload a CSV, TSV, JSONL or Excel file.")
        text = raw.decode(detect_encoding(raw), errors="replace").lstrip("\ufeff")
        if suffix in CONLL_SUFFIXES or looks_like_conll(text):
            frame = read_conll(text)
        elif suffix in JSON_SUFFIXES or text.lstrip().startswith("{"):
            frame = _read_jsonl(text) if suffix != ".json" else _read_json(text)
        else:
            frame = _read_delimited(text, _sniff_delimiter(text, suffix))
    frame.columns = unique_names([str(c).strip() for c in frame.columns])
    if frame.empty:
        raise DataError("The file has column names but no rows of data.")
    if len(frame) > limits.max_rows:
        raise DataError(f"The file has {len(frame):,} rows; the limit is {limits.max_rows:,}.")
    return frame


CONLL_SUFFIXES = {".conll", ".conllu", ".bio", ".iob", ".bmes"}
CONLL_TAG = re.compile(r"^(O|[A-Za-z]{1,2}[-_]\S+)$")


def _conll_fields(line: str) -> list[str]:
    return line.rstrip("\n").split("\t") if "\t" in line else line.split()


def looks_like_conll(text: str) -> bool:
    """One token per line with its tag last (O, B-PER, ...), sentences separated by blank lines."""
    lines = text.splitlines()[:5000]
    filled = [line for line in lines if line.strip() and not line.startswith("-DOCSTART-")]
    if not filled or len(filled) == len(lines):
        return False
    shaped = [f for f in map(_conll_fields, filled) if 2 <= len(f) <= 10 and CONLL_TAG.match(f[-1].strip())]
    return len(shaped) >= 0.8 * len(filled)  # a few bad lines: read_conll names the first


def read_conll(text: str) -> pd.DataFrame:
    """CoNLL-style text: token, optional middle columns, tag; a blank line ends a sentence; -DOCSTART- skipped."""
    sentences, tokens, tags = [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("-DOCSTART-") or not line.strip():
            if tokens:
                sentences.append((tokens, tags))
            tokens, tags = [], []
            continue
        fields = _conll_fields(line)
        if len(fields) < 2:
            raise DataError(f"Line {number} of the CoNLL file has a token but no tag: {line.strip()[:40]!r}.")
        tokens.append(fields[0].strip() or fields[0])
        tags.append(fields[-1].strip())
    if tokens:
        sentences.append((tokens, tags))
    return pd.DataFrame({"tokens": [t for t, _ in sentences], "tags": [g for _, g in sentences]})


def unique_names(names: list[str]) -> list[str]:
    """Column names as a user can pick them: an empty name becomes 'column N', a repeated one gets ' (2)'."""
    seen: set[str] = set()
    out = []
    for i, name in enumerate(names, 1):
        name = name or f"column {i}"
        base, n = name, 2
        while name in seen:
            name, n = f"{base} ({n})", n + 1
        seen.add(name)
        out.append(name)
    return out


def _read_delimited(text: str, sep: str, header: int | None = 0) -> pd.DataFrame:
    """CSV/TSV; trailing empty cells are trimmed, other ragged rows are dropped if they are few."""
    ragged = []

    def fix(fields: list[str]):
        if not any(f.strip() for f in fields[width:]):
            return fields[:width]
        ragged.append(fields)
        return None

    first_line = next(csv.reader(io.StringIO(text, newline=None), delimiter=sep), [])
    width = len(first_line)
    try:
        frame = pd.read_csv(io.StringIO(text, newline=None), sep=sep, dtype=str, skipinitialspace=True,
                            header=header, index_col=False, engine="python", on_bad_lines=fix)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise DataError("The file could not be read as a table; check that it is a CSV, TSV or Excel file.") from exc
    if len(ragged) > 0.01 * (len(frame) + len(ragged)):
        raise DataError(f"{len(ragged):,} rows do not have the same number of columns as the header "
                        f"({width}). Check the delimiter and quoting of the file.")
    if header is not None and _header_looks_like_data(frame):
        frame = _read_delimited(text, sep, header=None)
        frame.columns = [f"column_{i + 1}" for i in range(len(frame.columns))]
    return frame


def _header_looks_like_data(frame: pd.DataFrame) -> bool:
    """A first row of data mistaken for the header: a long sentence, or a name that is also a value below."""
    for column in frame.columns:
        name = str(column)
        if len(name) > 40 or (not name.startswith("Unnamed") and name in set(frame[column].dropna().astype(str))):
            return True
    return False


def _read_json(text: str) -> pd.DataFrame:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return _read_jsonl(text)
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return pd.DataFrame(data)
    raise DataError("The JSON file must be a list of objects, or one object per line (JSON Lines).")


def as_string(value) -> str:
    """One cell as text: '' for a missing value, JSON for a list or an object (JSON Lines cells), else str."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False)
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return ""
    return str(value).strip()


def as_strings(series: pd.Series) -> pd.Series:
    return series.map(as_string)


def name_hint(name: str, hints: tuple[str, ...]) -> bool:
    return name.strip().lower() in hints


def guess_text_column_or_none(frame: pd.DataFrame) -> str | None:
    try:
        return guess_text_column(frame)
    except DataError:
        return None


def guess_text_column(frame: pd.DataFrame) -> str:
    """The column that reads most like free text (long, mostly distinct strings)."""
    best, best_score = None, 0.0
    for column in frame.columns:
        values = as_strings(frame[column])
        values = values[values != ""]
        if values.empty or values.str.fullmatch(r"[-+]?\d+(\.\d+)?").mean() > 0.9:
            continue
        distinct = values.nunique() / len(values)
        score = values.str.len().mean() * (0.2 + distinct) * (3 if name_hint(column, TEXT_NAME_HINTS) else 1)
        if score > best_score:
            best, best_score = column, score
    if best is None:
        raise DataError("No column looks like text. The table needs one column of sentences or documents.")
    return best
