"""Are the explanations faithful? For validation texts of a run trained with the app's defaults, delete the k words
integrated gradients ranks highest (core.deploy.explain) and, separately, k random words; a faithful explanation
lowers the predicted class's probability more, and flips the label more often.

    python -m bench.explain_faithfulness [--samples bbc_news chinese_reviews] [--texts 60]
"""
from __future__ import annotations

import argparse
import random
import tempfile

import numpy as np

from core.data.samples import sample_path
from core.deploy.explain import WORD, explain
from core.deploy.predict import Predictor
from core.runs.run_folder import RunFolder
from core.runs.store import RunStore
from core.train import service

KS = (1, 3, 5)


def without(text: str, drop: set[int]) -> str:
    """``text`` with the words (WORD matches) at the indices ``drop`` cut out."""
    spans = [m.span() for m in WORD.finditer(text)]
    kept, last = [], 0
    for i, (start, end) in enumerate(spans):
        if i in drop:
            kept.append(text[last:start])
            last = end
    return "".join(kept) + text[last:]


def measure(sample: str, texts: int, seed: int = 0) -> dict:
    with tempfile.TemporaryDirectory() as runs:
        job, outcome = service.train(service.plan_run(sample_path(sample), {"seed": seed}), RunStore(runs))
        predictor = Predictor(job.run_dir)
        frame = RunFolder(job.run_dir).predictions().head(texts)
        found = explain(predictor, frame["text"].tolist())
        rng = random.Random(seed)
        rows = {k: {"top": [], "random": [], "top_flips": 0, "random_flips": 0} for k in KS}
        for text, explanation in zip(frame["text"], found):
            before = predictor.predict([text])[0].probabilities[explanation.label]
            n = len(explanation.words)
            for k in KS:
                if n <= k:
                    continue
                for kind, drop in (("top", set(explanation.top(k))), ("random", set(rng.sample(range(n), k)))):
                    after = predictor.predict([without(text, drop)])[0]
                    rows[k][kind].append(before - after.probabilities[explanation.label])
                    rows[k][f"{kind}_flips"] += after.label != explanation.label
        return {"sample": sample, "macro_f1": outcome.metrics["macro_f1"], "texts": len(found),
                **{k: {"top_drop": float(np.mean(r["top"])), "random_drop": float(np.mean(r["random"])),
                       "top_flips": r["top_flips"] / max(1, len(r["top"])),
                       "random_flips": r["random_flips"] / max(1, len(r["random"]))} for k, r in rows.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", nargs="+", default=["bbc_news", "chinese_reviews"])
    parser.add_argument("--texts", type=int, default=60)
    args = parser.parse_args()
    for sample in args.samples:
        result = measure(sample, args.texts)
        print(f"{sample} (macro-F1 {result['macro_f1']:.3f}, {result['texts']} validation texts):")
        for k in KS:
            r = result[k]
            print(f"  delete {k}: probability drop top {r['top_drop']:.3f} vs random {r['random_drop']:.3f}; "
                  f"label flips top {r['top_flips']:.0%} vs random {r['random_flips']:.0%}")


if __name__ == "__main__":
    main()
