"""Read user tables (CSV/TSV/JSONL/Excel), guess columns, build the label map and split."""
from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from charset_normalizer import from_bytes
from sklearn.model_selection import train_test_split

from .errors import DataError

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_MAX_ROWS = 1_000_000
HIGH_UNK_RATE = 0.10
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


@dataclass
class LabelledData:
    """Clean texts with integer labels and the names behind them."""

    texts: list[str]
    labels: list[int]
    label_names: list[str]
    text_column: str
    label_column: str
    rows_total: int = 0
    rows_dropped: int = 0
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def class_counts(self) -> dict[str, int]:
        counts = Counter(self.labels)
        return {name: counts.get(i, 0) for i, name in enumerate(self.label_names)}

    def subset(self, indices) -> "LabelledData":
        idx = list(indices)
        return LabelledData([self.texts[i] for i in idx], [self.labels[i] for i in idx],
                            self.label_names, self.text_column, self.label_column, len(idx), 0)


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
    """Read a CSV/TSV/JSONL/Excel file into a DataFrame of strings, or raise DataError."""
    path = Path(path)
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
    if suffix in EXCEL_SUFFIXES or raw.startswith(b"PK\x03\x04") or raw.startswith(b"\xd0\xcf\x11\xe0"):
        frame = _read_excel(path)
    else:
        kind = _looks_binary(raw)
        if kind:
            raise DataError(f"This file looks like {kind}, not a table. Upload a CSV, TSV, JSONL or Excel file.")
        text = raw.decode(detect_encoding(raw), errors="replace").lstrip("\ufeff")
        if suffix in JSON_SUFFIXES or text.lstrip().startswith("{"):
            frame = _read_jsonl(text) if suffix != ".json" else _read_json(text)
        else:
            frame = _read_delimited(text, _sniff_delimiter(text, suffix))
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError("The file has column names but no rows of data.")
    if len(frame) > limits.max_rows:
        raise DataError(f"The file has {len(frame):,} rows; the limit is {limits.max_rows:,}.")
    return frame


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


def _as_strings(series: pd.Series) -> pd.Series:
    return series.map(lambda v: "" if pd.isna(v) else str(v).strip())


def _name_hint(name: str, hints: tuple[str, ...]) -> bool:
    return name.strip().lower() in hints


def guess_text_column(frame: pd.DataFrame) -> str:
    """The column that reads most like free text (long, mostly distinct strings)."""
    best, best_score = None, 0.0
    for column in frame.columns:
        values = _as_strings(frame[column])
        values = values[values != ""]
        if values.empty or values.str.fullmatch(r"[-+]?\d+(\.\d+)?").mean() > 0.9:
            continue
        distinct = values.nunique() / len(values)
        score = values.str.len().mean() * (0.2 + distinct) * (3 if _name_hint(column, TEXT_NAME_HINTS) else 1)
        if score > best_score:
            best, best_score = column, score
    if best is None:
        raise DataError("No column looks like text. The table needs one column of sentences or documents.")
    return best


def guess_label_column(frame: pd.DataFrame, text_column: str) -> str:
    """The column with few distinct values, preferring names such as 'label' or 'category'."""
    candidates = []
    for column in frame.columns:
        if column == text_column:
            continue
        values = _as_strings(frame[column])
        values = values[values != ""]
        distinct = values.nunique()
        hinted = _name_hint(column, LABEL_NAME_HINTS)
        if distinct < 1 and not hinted:
            continue
        if hinted or 2 <= distinct <= max(2, min(1000, len(values) // 2)):
            candidates.append((not hinted, distinct / max(len(values), 1), column))
    if not candidates:
        raise DataError("No column looks like a label. The table needs a column with the class of each text.")
    return min(candidates)[2]


def guess_columns(frame: pd.DataFrame) -> tuple[str, str]:
    """Guess (text column, label column)."""
    if len(frame.columns) < 2:
        raise DataError("The table has only one column; it needs a text column and a label column.")
    text = guess_text_column(frame)
    return text, guess_label_column(frame, text)


def _label_sort_key(name: str):
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def prepare(frame: pd.DataFrame, text_column: str | None = None, label_column: str | None = None) -> LabelledData:
    """Clean the chosen columns, build the label map and check the data can be trained on."""
    if len(frame.columns) < 2:
        raise DataError("The table has only one column; it needs a text column and a label column.")
    if not text_column:
        text_column = guess_text_column(frame.drop(columns=[label_column], errors="ignore") if label_column else frame)
    label_column = label_column or guess_label_column(frame, text_column)
    for role, column in (("text", text_column), ("label", label_column)):
        if column not in frame.columns:
            raise DataError(f"The {role} column '{column}' is not in the table. Columns: {', '.join(frame.columns)}.")
    if text_column == label_column:
        raise DataError("The text column and the label column must be different columns.")
    texts = _as_strings(frame[text_column])
    labels = _as_strings(frame[label_column]).map(_normalise_label)
    total = len(frame)
    missing_labels = int((labels == "").sum())
    if missing_labels > total / 2:
        raise DataError(f"The label column '{label_column}' is empty on {missing_labels:,} of {total:,} rows. "
                        "Fill in the labels or choose another column.")
    keep = (texts != "") & (labels != "")
    texts, labels = texts[keep], labels[keep]
    if texts.empty:
        raise DataError("No row has both a text and a label.")
    counts = labels.value_counts()
    if len(counts) > 50 and len(counts) > len(labels) / 2:
        raise DataError(f"The label column '{label_column}' has {len(counts):,} different values for {len(labels):,} "
                        "rows: it looks like an ID or free text, not a class. Choose another label column.")
    if len(counts) < 2:
        raise DataError(f"Every row has the same label '{counts.index[0]}'. Training needs at least two classes.")
    rare = [str(name) for name, n in counts.items() if n < 2]
    if rare:
        shown = ", ".join(f"'{r}'" for r in rare[:5]) + (f" and {len(rare) - 5} more" if len(rare) > 5 else "")
        raise DataError(f"{len(rare)} class(es) have fewer than 2 rows: {shown}. Add examples or remove them.")
    names = sorted(counts.index, key=_label_sort_key)
    index = {name: i for i, name in enumerate(names)}
    return LabelledData(texts.tolist(), [index[v] for v in labels], names, text_column, label_column,
                        rows_total=total, rows_dropped=total - len(texts))


def _normalise_label(value: str) -> str:
    """Treat 1, "1" and 1.0 as the same label."""
    if re.fullmatch(r"[-+]?\d+\.0+", value):
        return value.split(".")[0]
    return value


def split(data: LabelledData, val_fraction: float, seed: int) -> tuple[LabelledData, LabelledData]:
    """Stratified train/validation split; every class keeps at least one row on each side."""
    n_classes = len(data.label_names)
    n_val = max(n_classes, round(val_fraction * len(data)))
    if len(data) - n_val < n_classes:
        raise DataError(f"{len(data)} rows are too few to hold out a validation set for {n_classes} classes. "
                        "Add rows or lower the validation fraction.")
    train_idx, val_idx = train_test_split(list(range(len(data))), test_size=n_val,
                                          stratify=data.labels, random_state=seed)
    return data.subset(train_idx), data.subset(val_idx)


def unknown_token_rate(tokenizer, texts: list[str], sample: int = 500) -> float:
    """Share of tokens the tokenizer maps to its unknown token (first 1,000 characters of up to 500 texts)."""
    if tokenizer.unk_token_id is None or not texts:
        return 0.0
    return unknown_share(tokenizer, tokenizer([t[:1000] for t in texts[:sample]], add_special_tokens=False)["input_ids"])


def unknown_share(tokenizer, token_ids: list[list[int]]) -> float:
    """Share of already-tokenised ids (special tokens left out) that are the unknown token."""
    unk = tokenizer.unk_token_id
    if unk is None:
        return 0.0
    special = set(tokenizer.all_special_ids) - {unk}
    counted = [i for row in token_ids for i in row if i not in special]
    return counted.count(unk) / len(counted) if counted else 0.0


def unknown_token_warning(rate: float, model_name: str, texts: list[str]) -> str | None:
    """A plain warning when the base model cannot read much of the data, naming models that can."""
    from .models import models_for, text_language

    if rate <= HIGH_UNK_RATE:
        return None
    language = text_language(texts)
    better = [m for m in models_for(language) if m != model_name]
    hint = f"Choose {' or '.join(better)}, which reads {'Chinese' if language == 'zh' else 'this text'}." if better \
        else "Pick a base model that reads this language."
    return (f"{rate:.0%} of the tokens are unknown to {model_name}: it cannot read much of this text. "
            f"Accuracy will suffer. {hint}")
