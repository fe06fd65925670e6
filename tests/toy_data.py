"""Small learnable tables, one per encoder task family, shared by the tests of several folders."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

WORDS = ["good", "bad", "great", "awful", "fine", "poor"]


def toy_frames() -> dict[str, pd.DataFrame]:
    """Small learnable tables, one per task family, with the column names users tend to have."""
    rng = np.random.default_rng(0)
    n = 96
    pairs = pd.DataFrame({"sentence1": [f"{WORDS[i % 6]} thing" for i in range(n)],
                          "sentence2": [f"{WORDS[(i // 2) % 6]} thing" for i in range(n)]})
    return {
        "classification": pd.DataFrame({"text": [f"this is {WORDS[i % 2]} number {i}" for i in range(n)],
                                        "label": [["pos", "neg"][i % 2] for i in range(n)]}),
        "regression": pd.DataFrame({"text": [f"{WORDS[i % 6]} {WORDS[(i // 6) % 6]} item {i}" for i in range(n)],
                                    "score": [f"{(i % 6) * 1.5 + rng.normal() * 0.1:.3f}" for i in range(n)]}),
        "pairs": pairs.assign(label=[["different", "same"][int(i % 6 == (i // 2) % 6)] for i in range(n)]),
        "pair_regression": pairs.assign(similarity=[f"{(i % 7) + rng.normal() * 0.1:.2f}" for i in range(n)]),
        "multi_label": pd.DataFrame({"text": [f"{WORDS[i % 6]} and {WORDS[(i // 6) % 6]} {i}" for i in range(n)],
                                     "genres": ["|".join(sorted({WORDS[i % 6], WORDS[(i // 6) % 6]})) for i in range(n)]}),
        "token_classification": pd.DataFrame({
            "tokens": [json.dumps(["John", "met", "Mary", "in", "Paris", str(i)]) for i in range(n)],
            "tags": [json.dumps(["B-PER", "O", "B-PER", "O", "B-LOC", "O"]) for i in range(n)]}),
    }
