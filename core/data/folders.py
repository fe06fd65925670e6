"""Labelled files (images or sound clips) as a table: a folder (or zip) of one sub-folder per class, or a folder
(or zip) holding a table whose file column names files beside it. The result has an ``image`` (or ``audio``)
column of absolute paths, so every table-reading path (Data tab, CLI, API) takes them too; a zip is unpacked once
into the cache."""
from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path, PurePosixPath

import pandas as pd

from ..common.errors import DataError
from .pixels import IMAGE_SUFFIXES
from .sound import AUDIO_SUFFIXES

KINDS = {"image": IMAGE_SUFFIXES, "audio": AUDIO_SUFFIXES}  # the column a folder's files become, by suffix
FILE_SUFFIXES = IMAGE_SUFFIXES | AUDIO_SUFFIXES
TABLE_SUFFIXES = {".csv", ".tsv", ".txt", ".jsonl", ".json", ".xlsx"}
MAX_UNPACKED_BYTES = 4 * 2**30  # a zip may hold at most this much once unpacked
MAX_RATIO = 200  # a zip unpacking to over 200x its size is refused as a zip bomb
MAX_FILES = 500_000


def is_file_archive(path: Path) -> bool:
    """A zip that is not an Excel workbook (both are zips)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return "[Content_Types].xml" not in archive.namelist()


def is_labelled_file(path: Path) -> bool:
    """An image or a sound clip (not hidden)."""
    return path.suffix.lower() in FILE_SUFFIXES and not path.name.startswith(".")


def file_kind(paths: list[str]) -> str:
    """The column name the most files of ``paths`` call for: "image" or "audio"."""
    suffixes = [Path(p).suffix.lower() for p in paths]
    counts = {kind: sum(s in kind_suffixes for s in suffixes) for kind, kind_suffixes in KINDS.items()}
    return max(counts, key=counts.get)


def unpacked_folder(path: Path, content: bytes, cache: Path) -> Path:
    """Unpack a zip of labelled files (``content``: its bytes, already read) once into ``cache``/images/<hash>
    (images, sound clips and tables only, no path outside it)."""
    target = cache / "images" / hashlib.sha256(content).hexdigest()[:20]
    if (target / ".complete").is_file():
        return target
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"The zip file could not be opened ({exc}).") from exc
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and kept(m.filename)]
        if not any(PurePosixPath(m.filename).suffix.lower() in FILE_SUFFIXES for m in members):
            raise DataError("The zip file could not be opened as images or sound clips: it holds no PNG, JPEG, "
                            "WebP, BMP, WAV, FLAC, OGG or MP3 files. Upload a table itself, or zip one folder per "
                            "class, each holding that class's images or clips.")
        if len(members) > MAX_FILES:
            raise DataError(f"The zip holds {len(members):,} files; the limit is {MAX_FILES:,}.")
        unpacked = sum(m.file_size for m in members)
        if unpacked > MAX_UNPACKED_BYTES or unpacked > MAX_RATIO * max(path.stat().st_size, 1):
            raise DataError(f"The zip would unpack to {unpacked / 2**20:,.0f} MB, too much for its "
                            f"{path.stat().st_size / 2**20:,.1f} MB (a zip bomb?). Upload the files themselves.")
        tmp = target.with_name(f".{target.name}-{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            for member in members:
                out = tmp.joinpath(*PurePosixPath(member.filename.replace("\\", "/")).parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, open(out, "wb") as sink:
                    shutil.copyfileobj(source, sink)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataError(f"The zip file is damaged: {exc}.") from exc
        (tmp / ".complete").touch()
        try:
            os.replace(tmp, target)
        except OSError:  # unpacked by another request first
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def kept(name: str) -> bool:
    """Images, sound clips and tables, without absolute paths, ``..`` or macOS metadata."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return (bool(parts) and not name.startswith(("/", "\\")) and ".." not in parts and ":" not in parts[0]
            and "__MACOSX" not in parts and not parts[-1].startswith(".")
            and PurePosixPath(parts[-1]).suffix.lower() in FILE_SUFFIXES | TABLE_SUFFIXES)


def content_root(folder: Path) -> Path:
    """Skip wrapper folders: a folder holding only one folder, which itself holds folders or a table, stands for
    that one (a lone folder of files is one class, not a wrapper)."""
    while True:
        entries = [e for e in folder.iterdir() if not e.name.startswith((".", "__MACOSX"))]
        inner = entries[0] if len(entries) == 1 and entries[0].is_dir() else None
        if inner and any(e.is_dir() or e.suffix.lower() in TABLE_SUFFIXES for e in inner.iterdir()):
            folder = inner
        else:
            return folder


def read_labelled_folder(folder: Path, read_table) -> pd.DataFrame:
    """The labelled files of a folder: its table (file column made absolute) or its class sub-folders."""
    root = content_root(folder)
    tables = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES)
    if tables:
        return table_with_files(tables[0], read_table)
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX")))
    rows = [(str(file), label.name) for label in classes
            for file in sorted(label.rglob("*")) if file.is_file() and is_labelled_file(file)]
    loose = sorted(str(p) for p in root.iterdir() if p.is_file() and is_labelled_file(p))
    if not rows and not loose:
        raise DataError("No images or sound clips were found. Put each class's files in a folder named after the "
                        "class (e.g. cats/1.jpg, dogs/2.jpg, or yes/1.wav, no/2.wav) and zip those folders.")
    rows += [(path, "") for path in loose]  # loose files: to predict
    return pd.DataFrame(rows, columns=[file_kind([path for path, _ in rows]), "label"])


def table_with_files(table: Path, read_table) -> pd.DataFrame:
    """A table inside a folder of files: the column naming the most existing files becomes ``image`` or
    ``audio``."""
    frame = read_table(table)
    base = table.parent

    def resolved(value) -> str | None:
        if not isinstance(value, str) or not value.strip():
            return None
        path = (base / value.strip().replace("\\", "/")).resolve()
        return str(path) if path.is_relative_to(base.resolve()) and path.is_file() and is_labelled_file(path) else None

    found = {column: frame[column].map(resolved) for column in frame.columns}
    best = max(found, key=lambda c: found[c].notna().sum())
    if found[best].notna().sum() == 0:
        raise DataError(f"No column of '{table.name}' names image or sound files inside the zip. Give each file's "
                        "path relative to the table, e.g. images/1.png or clips/1.wav.")
    kind = file_kind(found[best].dropna().tolist())
    out = frame.drop(columns=[best]).assign(**{kind: found[best].fillna("")})  # rows without a file: dropped, counted
    return out[[kind] + [c for c in out.columns if c != kind]]
