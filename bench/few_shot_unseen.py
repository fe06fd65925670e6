"""Small tables none of the samples uses, with the app's defaults: VADER's Amazon review and NYT editorial snippets
(human-rated, |score| >= 1, good / bad), k training rows per class. The default (few-shot mode, chosen by `auto`),
the plain fine-tune (`few_shot` off) and TF-IDF + logistic regression on the same k rows, all scored on the same
100 held-out rows per class with macro-F1.

    python -m bench.few_shot_unseen [--k 8 16] [--seeds 0 1]
"""
from __future__ import annotations

import argparse
import io
import tarfile
import tempfile
import time

import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline

from core.data.samples import vader_sdist
from core.deploy.predict import Predictor
from core.runs.store import RunStore
from core.train import service

SETS = ("amazonReviewSnippets", "nytEditorialSnippets")
HELD_OUT = 100  # rows per class


def rated(name: str) -> pd.DataFrame:
    """One of VADER's ground-truth files as snippet / tone (good, bad), the clearly rated rows only."""
    with tarfile.open(vader_sdist()) as outer:
        inner = outer.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz").read()
    with tarfile.open(fileobj=io.BytesIO(inner)) as archive:
        text = archive.extractfile(f"hutto_ICWSM_2014/{name}_GroundTruth.txt").read().decode("utf-8", "replace")
    rows = [line.split("\t") for line in text.splitlines() if line.count("\t") >= 2]
    frame = pd.DataFrame({"snippet": [r[2] for r in rows], "score": [float(r[1]) for r in rows]})
    frame = frame[frame["score"].abs() >= 1.0]
    return frame.assign(tone=(frame["score"] > 0).map({True: "good", False: "bad"}))[["snippet", "tone"]]


def fine_tuned(path: str, settings: dict, test: pd.DataFrame) -> tuple[float, float]:
    """Macro-F1 on ``test`` of a run trained on the table at ``path``, and its wall seconds."""
    started = time.time()
    with tempfile.TemporaryDirectory() as runs:
        job, _ = service.train(service.plan_run(path, settings), RunStore(runs))
        predicted = [p.label for p in Predictor(job.run_dir).predict(test["snippet"].tolist())]
    return f1_score(test["tone"], predicted, average="macro"), time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--k", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    for name in SETS:
        frame = rated(name)
        for k in args.k:
            for seed in args.seeds:
                test = frame.groupby("tone").sample(HELD_OUT, random_state=100 + seed)
                table = frame.drop(test.index).groupby("tone").sample(k + k // 4, random_state=seed)  # k to train
                with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as out:
                    table.to_csv(out, index=False)
                default = fine_tuned(out.name, {"seed": seed}, test)
                plain = fine_tuned(out.name, {"seed": seed, "few_shot": "off"}, test)
                rows = table.groupby("tone").head(k)
                tfidf = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                                      LogisticRegression(max_iter=1000)).fit(rows["snippet"], rows["tone"])
                classical = f1_score(test["tone"], tfidf.predict(test["snippet"]), average="macro")
                print(f"{name} k={k} seed={seed}: default {default[0]:.3f} ({default[1]:.0f} s) · plain "
                      f"{plain[0]:.3f} ({plain[1]:.0f} s) · TF-IDF + LR {classical:.3f}", flush=True)


if __name__ == "__main__":
    main()
