"""Has live traffic moved away from the validation reference? One check per feature: a test says whether the
difference is more than chance (chi-square for the outcome mix, Kolmogorov-Smirnov for numbers) and the
population stability index (PSI) says how large it is; a feature drifts when both agree."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .observe import Observation, outcome_counts
from .reference import Reference, numeric_features

ALPHA = 0.001  # a difference this unlikely by chance counts (few false alarms over many windows and features)
PSI_DRIFT = 0.1  # ... and it must be at least this large (0.1-0.25: moderate, above: large)
PSI_LARGE = 0.25
MIN_WINDOW = 30  # fewer predictions than this are not judged
FEATURE_NAMES = {"confidence": "confidence", "value": "predicted score", "input_chars": "input length",
                 "unknown_rate": "unknown-token share"}


@dataclass
class Check:
    """One feature's comparison of the window with the reference."""

    feature: str
    name: str  # shown to people
    test: str  # chi-square / KS
    p_value: float
    psi: float
    drifted: bool
    detail: str  # e.g. "'sport' 12% -> 41%"

    @property
    def severity(self) -> str:
        return "large" if self.drifted and self.psi >= PSI_LARGE else "moderate" if self.drifted else "none"


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins (half a count added to each bin)."""
    e = (expected + 0.5) / (expected + 0.5).sum()
    a = (actual + 0.5) / (actual + 0.5).sum()
    return float(np.sum((a - e) * np.log(a / e)))


def outcome_check(reference: Reference, observations: list[Observation]) -> Check:
    now = outcome_counts(observations)
    names = sorted(set(reference.outcome) | set(now), key=lambda c: -reference.outcome.get(c, 0))
    expected = np.array([reference.outcome.get(c, 0) for c in names], dtype=float)
    actual = np.array([now.get(c, 0) for c in names], dtype=float)
    if len(names) < 2:
        p_value = 1.0
    else:
        smoothed = (expected + 0.5) / (expected + 0.5).sum() * actual.sum()
        p_value = float(stats.chisquare(actual, smoothed).pvalue)
    share_then, share_now = expected / max(expected.sum(), 1), actual / max(actual.sum(), 1)
    moved = int(np.argmax(np.abs(share_now - share_then)))
    detail = f"'{names[moved]}' {share_then[moved]:.0%} -> {share_now[moved]:.0%}"
    score = psi(expected, actual)
    return Check("outcome", reference.kind.outcome_name, "chi-square", p_value, score,
                 p_value < ALPHA and score >= PSI_DRIFT, detail)


def numeric_check(feature: str, reference: list[float], values: list[float]) -> Check:
    then, now = np.asarray(reference), np.asarray(values)
    p_value = float(stats.ks_2samp(then, now).pvalue)
    edges = np.unique(np.quantile(then, np.linspace(0, 1, 11)[1:-1]))  # deciles of the reference
    bins = len(edges) + 1  # a value equal to an edge falls below it, so a constant reference still has two bins
    score = psi(np.bincount(np.searchsorted(edges, then), minlength=bins).astype(float),
                np.bincount(np.searchsorted(edges, now), minlength=bins).astype(float))
    form = "{:.0f}" if feature == "input_chars" else "{:.0%}" if feature == "unknown_rate" else "{:.3f}"
    detail = f"median {form.format(np.median(then))} -> {form.format(np.median(now))}"
    return Check(feature, FEATURE_NAMES[feature], "KS", p_value, score, p_value < ALPHA and score >= PSI_DRIFT, detail)


def compare(reference: Reference, observations: list[Observation]) -> list[Check]:
    """Every check of ``observations`` (a window of traffic) against ``reference``."""
    checks = [outcome_check(reference, observations)] if reference.kind.outcome_name else []
    live = numeric_features(observations)
    for feature, values in reference.numbers.items():
        if live.get(feature) and values:
            checks.append(numeric_check(feature, values, live[feature]))
    return checks


def verdict(checks: list[Check], count: int) -> str:
    """The checks in one plain sentence."""
    if count < MIN_WINDOW:
        return f"Not enough traffic to judge yet ({count} of {MIN_WINDOW} predictions)."
    moved = [c for c in checks if c.drifted]
    if not moved:
        return f"No drift: the last {count} predictions look like the validation data."
    return (f"Drift in the last {count} predictions: "
            + "; ".join(f"the {c.name} moved ({c.detail}, {c.severity})" for c in moved) + ".")
