"""The learning curve's power law: it recovers a known curve, its interval covers the truth, its sentence speaks
plainly; and a finished run trained again on shares of its rows (the same validation rows)."""
from __future__ import annotations

import json

import pytest
from toy_data import toy_frames

from core.insight.learning_curve import LearningCurve, Point


def curve(scores: dict[int, float], greater: bool = True, classes: int = 4) -> LearningCurve:
    return LearningCurve("macro_f1", "macro-F1", greater, tuple(Point(n, s) for n, s in scores.items()), classes)


def test_a_power_law_is_recovered_and_extrapolated():
    truth = {n: 1 - 0.9 * n ** -0.4 for n in (100, 200, 300, 400)}
    found = curve(truth)
    centre, low, high = found.predict(800)
    assert centre == pytest.approx(1 - 0.9 * 800 ** -0.4, abs=1e-6) and low <= centre <= high
    assert "With about 2x the rows (200 per class), macro-F1 would be about" in found.sentence()
    noisy = curve({100: 0.60, 200: 0.70, 300: 0.71, 400: 0.77})
    centre, low, high = noisy.predict(800)
    assert low < centre < high and high - low > 0.02  # noise widens the interval
    assert 0.77 < centre < 0.9


def test_flat_perfect_and_too_short_curves_say_so():
    flat = curve({100: 0.901, 200: 0.902, 300: 0.9025, 400: 0.903})
    assert flat.sentence().startswith("More rows of the same kind will not help much")
    assert "already perfect" in curve({100: 0.9, 200: 0.95, 300: 0.98, 400: 1.0}).sentence()
    assert curve({100: 0.5, 200: 0.6}).sentence() == "Too few points to fit a learning curve."
    loss = curve({100: 1.2, 200: 0.9, 300: 0.8, 400: 0.7}, greater=False, classes=0)
    assert loss.predict(800)[0] < 0.7 and "per class" not in loss.sentence()
    assert LearningCurve.from_dict(json.loads(json.dumps(flat.to_dict()))) == flat


def test_a_run_is_trained_again_on_shares_of_its_rows(tmp_path, tiny_model_dir):
    from core.runs.run_folder import RunFolder
    from core.runs.store import RunStore
    from core.train import service
    from core.train.learning_curve import learning_curve, saved_curve

    plan = service.plan_run(toy_frames()["classification"], {"base_model": str(tiny_model_dir), "epochs": 1,
                                                             "max_length": 32, "precision": "fp32"})
    store = RunStore(tmp_path)
    job, outcome = service.train(plan, store)
    found = learning_curve(job.run_dir, store, service.train_job, shares=(0.5, 0.75))
    rows = [p.rows for p in found.points]
    full = RunFolder(job.run_dir).data()
    assert rows[-1] == full["train_rows"] and rows[0] < rows[1] < rows[2]
    assert rows[0] == pytest.approx(full["train_rows"] * 0.5, abs=len(full["label_names"]))
    shares = [RunFolder(d) for d in tmp_path.iterdir() if d.is_dir() and d != job.run_dir]
    assert len(shares) == 2 and {s.data()["val_rows"] for s in shares} == {full["val_rows"]}
    validated = set(RunFolder(job.run_dir).predictions()["text"])
    assert all(set(s.predictions()["text"]) == validated for s in shares)  # the same validation rows
    assert saved_curve(job.run_dir) == found and found.sentence()
