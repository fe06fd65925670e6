"""Data-quality report, validation insight (ROC/PR, calibration, threshold, label errors) and run comparison."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from core.data.dedup import deduplicate
from core.insight import compare
from core.insight import outputs as insight
from core.insight.quality import apply_fix, inspect
from core.tasks import get_task
from core.tasks.types import TaskData

SENTENCES = [
    "the delivery arrived two days late and the box was crushed on one side",
    "customer service answered my question within minutes and solved it",
    "the battery lasts a whole weekend of hiking without any charging",
    "screen cracked after one week even though it stayed in its case",
    "setup took five minutes and the instructions were clear and short",
    "the colour is nothing like the photos on the product page at all",
    "refund was processed quickly after I returned the unused item",
    "sound quality is rich and the bass does not distort at high volume",
    "it stopped working after the first software update last month",
    "very comfortable to wear for long days at the office and travel",
    "the strap broke the first time I used it outdoors in the rain",
    "great value for the price and it looks more expensive than it is",
]


def flawed_table() -> tuple[pd.DataFrame, dict[str, int]]:
    """Twelve distinct reviews plus known flaws: 2 exact copies (one re-cased and re-spaced), 1 text under a
    second label, 1 near copy, 1 label spelt two ways."""
    labels = ["neg", "pos", "pos", "neg", "pos", "neg", "pos", "pos", "neg", "pos", "neg", "pos"]
    rows = [{"text": s, "label": label} for s, label in zip(SENTENCES, labels)]
    rows += [{"text": SENTENCES[0], "label": "neg"},
             {"text": "  The Battery lasts a whole   weekend of hiking without any charging ", "label": "pos"},
             {"text": SENTENCES[3], "label": "pos"},
             {"text": SENTENCES[4] + " indeed", "label": "pos"},
             {"text": "arrived on time and works as described", "label": "Pos"},
             {"text": "works as described and arrived on time", "label": "Pos"}]
    return pd.DataFrame(rows), {"exact_duplicates": 2, "conflicting_labels": 1, "near_duplicates": 1,
                                "label_variants": 1}


def test_the_report_finds_exactly_the_injected_flaws():
    task = get_task("classification")
    frame, expected = flawed_table()
    report = inspect(task, task.prepare(frame))
    assert {key: report.get(key).count for key in expected} == expected
    assert report.get("short_texts").count == 0
    assert report.get("conflicting_labels").examples[0]["given"] == "neg, pos"
    assert set(report.fixes) == {"drop_duplicates", "drop_conflicts", "merge_label_variants"}


def test_fixes_remove_what_they_promise():
    task = get_task("classification")
    frame, _ = flawed_table()
    data = task.prepare(frame)
    without_copies, message = apply_fix(data, "drop_duplicates")
    assert len(without_copies) == len(data) - 2 and "2 duplicate" in message
    merged, _ = apply_fix(without_copies, "merge_label_variants")
    assert merged.label_names == ["neg", "pos"] and len(merged) == len(without_copies)
    clean, _ = apply_fix(merged, "drop_conflicts")
    report = inspect(task, clean)
    assert [report.get(k).count for k in ("exact_duplicates", "conflicting_labels", "label_variants")] == [0, 0, 0]
    assert deduplicate(data)[1] == 2


def test_leakage_counts_validation_rows_with_a_copy_in_training():
    """100 distinct texts, each written twice: a random split puts some pairs on both sides."""
    task = get_task("classification")
    words = " ".join(SENTENCES).split()
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, 12)) for _ in range(100)]
    data = task.prepare(pd.DataFrame({"text": texts * 2, "label": [["a", "b"][i % 2] for i in range(100)] * 2}))
    train, val = task.split(TaskData({**data.inputs, "_row": list(range(200))}, data.targets, {}, data.label_names),
                            0.2, 42)
    in_train = {i % 100 for i in train.inputs["_row"]}
    expected = sum(1 for i in val.inputs["_row"] if i % 100 in in_train)
    assert expected > 0 and inspect(task, data).get("leakage").count == expected


def test_the_report_covers_word_lists_and_pairs():
    ner = get_task("token_classification")
    tokens = [json.dumps(["Ann", "met", "Bob", "in", "Rome", str(i)]) for i in range(10)]
    frame = pd.DataFrame({"tokens": tokens + tokens[:2], "tags": [json.dumps(["B-PER", "O", "B-PER", "O", "B-LOC", "O"])] * 12})
    report = inspect(ner, ner.prepare(frame))
    assert report.get("exact_duplicates").count == 2 and "class_imbalance" not in [f.key for f in report.findings]
    pairs = get_task("pairs")
    frame = pd.DataFrame({"sentence1": ["a cat sat", "a dog ran", "a cat sat", "birds fly high"] * 3,
                          "sentence2": ["a cat sits", "a cat sat", "a cat sits", "fish swim deep"] * 3,
                          "label": ["same", "different", "same", "different"] * 3})
    assert inspect(pairs, pairs.prepare(frame)).get("exact_duplicates").count == 9  # 3 distinct rows of 12


def test_cli_inspect_prints_json(tmp_path):
    frame, expected = flawed_table()
    path = tmp_path / "flawed.csv"
    frame.to_csv(path, index=False)
    out = subprocess.run([sys.executable, "-m", "core", "inspect", str(path), "--json"], capture_output=True, text=True,
                         check=True).stdout
    counts = {f["key"]: f["count"] for f in json.loads(out)["findings"]}
    assert {k: counts[k] for k in expected} == expected


def outputs(seed: int = 0, n: int = 400) -> insight.ValidationOutputs:
    """A three-class model that is right 80% of the time and overconfident."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), truth] += 2.0
    probs = np.exp(3 * logits) / np.exp(3 * logits).sum(1, keepdims=True)
    return insight.ValidationOutputs(probs, truth, ["a", "b", "c"])


def test_curves_match_scikit_learn_and_calibration_is_measured():
    out = outputs()
    curves = insight.class_curves(out)
    for k, curve in enumerate(curves):
        assert curve.roc_auc == pytest.approx(roc_auc_score(out.truth == k, out.probabilities[:, k]))
        assert curve.average_precision == pytest.approx(average_precision_score(out.truth == k, out.probabilities[:, k]))
    cal = insight.calibration(out)
    confidence = out.probabilities.max(1)
    accuracy = (out.probabilities.argmax(1) == out.truth).mean()
    assert sum(cal.counts) == len(out.truth)
    assert cal.ece >= abs(confidence.mean() - accuracy) - 1e-9  # ECE is at least the overall gap
    calibrated = insight.ValidationOutputs(np.tile([[0.8, 0.2]], (10, 1)), np.array([0] * 8 + [1] * 2), ["x", "y"])
    assert insight.calibration(calibrated).ece == pytest.approx(0.0)


def test_label_issues_find_flipped_labels(tmp_path):
    out = outputs(n=300)
    flipped = np.arange(0, 300, 30)
    confident = out.probabilities.argmax(1) == out.truth
    flipped = flipped[confident[flipped]]
    truth = out.truth.copy()
    truth[flipped] = (truth[flipped] + 1) % 3
    insight.save_outputs(tmp_path, out.probabilities, truth)
    (tmp_path / "data.json").write_text(json.dumps({"label_names": ["a", "b", "c"]}))
    names = np.array(["a", "b", "c"])
    predictions = pd.DataFrame({"text": [f"row {i}" for i in range(300)], "label": names[truth],
                                "predicted": names[out.probabilities.argmax(1)], "confidence": out.probabilities.max(1)})
    issues = insight.label_issues(insight.load_outputs(tmp_path), predictions)
    found = {int(t.split()[1]) for t in issues["text"]}
    assert len(set(flipped) & found) >= 0.8 * len(flipped)
    assert list(issues.columns[:3]) == ["given label", "predicted", "confidence in given label"]


def test_threshold_metrics_and_saving(tmp_path):
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.45, 0.55]])
    out = insight.ValidationOutputs(probs, np.array([0, 1, 1, 0]), ["neg", "pos"])
    assert insight.threshold_metrics(out, 0.5) == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "macro_f1": 0.5, "accuracy": 0.5})
    assert insight.threshold_metrics(out, 0.35)["recall"] == 1.0
    (tmp_path / "config.json").write_text(json.dumps({"id2label": {"0": "neg", "1": "pos"}, "sft_studio": {}}))
    insight.save_threshold(tmp_path, 0.35)
    assert insight.saved_threshold(tmp_path) == 0.35


def test_compare_reads_histories_and_lists_differing_settings(tmp_path):
    from core.runs.store import RunStore

    store = RunStore(tmp_path)
    for name, lr in (("one", 1e-4), ("two", 3e-4)):
        run = tmp_path / name
        run.mkdir()
        (run / "train_config.json").write_text(json.dumps({"task": "classification", "learning_rate": lr, "epochs": 1}))
        (run / "metrics.json").write_text(json.dumps({"macro_f1": 0.5 + lr * 100, "step": 2, "val_loss": 0.6,
                                                      "per_class": {"x": {"f1": 0.4}, "y": {"f1": 0.6}},
                                                      "baseline": {"macro_f1": 0.33}}))
        events = [{"event": "step", "step": s, "loss": 1.0 / s} for s in (1, 2)]
        events.append({"event": "evaluation", "step": 2, "loss": 0.6, "metrics": {"macro_f1": 0.5}})
        (run / "history.jsonl").write_text("\n".join(map(json.dumps, events)) + "\n{broken")
    runs = [store.info(tmp_path / "one"), store.info(tmp_path / "two")]
    curves = compare.run_curves(runs[0])
    assert curves.steps == [1, 2] and curves.eval_metric == [0.5] and curves.metric_name == "macro-F1"
    table = compare.config_table(runs, differences_only=True)
    assert table["setting"].tolist() == ["learning_rate"]
    assert len(compare.config_table(runs)) > 1
    assert compare.metric_table(runs)["value"].tolist() == pytest.approx([0.51, 0.53])
    assert compare.per_class_f1(runs).loc["y", "two"] == 0.6


@pytest.mark.parametrize("dedupe", [True, False])
def test_training_drops_exact_copies_before_the_split(dedupe, toy_csv, tiny_model_dir, tmp_path):
    from core.runs import events as ev
    from core.runs.config import TrainConfig
    from core.runs.store import RunStore
    from core.train.engine import TrainingJob

    task = get_task("classification")
    frame = pd.read_csv(toy_csv)
    data = task.prepare(pd.concat([frame, frame.head(10)], ignore_index=True))
    config = TrainConfig(base_model=str(tiny_model_dir), max_steps=1, batch_size=8, max_length=32, precision="fp32",
                         deduplicate=dedupe)
    job = TrainingJob(config, data, RunStore(tmp_path / "runs"))
    job.run()
    started = next(e for e in job.events.since(0) if isinstance(e, ev.Started))
    assert started.train_rows + started.val_rows == len(frame) + (0 if dedupe else 10)
    assert any("Dropped 10 exact duplicate" in w for w in started.warnings) == dedupe
