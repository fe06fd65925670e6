"""Training on from a finished run: its head kept label by label, the run as a base model (run id or folder), and
comparing the new run with the served one on the same held-out rows."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from core.cli.main import main as cli
from core.common.errors import ConfigError
from core.deploy.held_out_check import compare_held_out
from core.deploy.predict import Predictor
from core.insight.held_out import METRICS, compare_metric, paired_bootstrap
from core.runs import events as ev
from core.runs.store import RunStore
from core.train import service
from core.train.base_run import base_model_path, runs_to_train_on
from core.models.labels_carried import carry_labels, own_labels

SETTINGS = dict(epochs=1, batch_size=8, max_length=32, learning_rate=1e-3, eval_every_steps=100,
                early_stopping_patience=0, precision="fp32", task="classification")


def test_the_head_is_carried_label_by_label_whatever_the_order():
    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
                        id2label={0: "billing", 1: "spam", 2: "delivery", 3: "login"})
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.bias.copy_(torch.arange(4.0) + 1)
    old = {name: (model.classifier.weight[i].clone(), model.classifier.bias[i].item())
           for i, name in config.id2label.items()}
    new = ["login", "refund", "billing", "delivery"]  # shuffled, 'refund' added, 'spam' dropped
    head = dict(num_labels=4, id2label=dict(enumerate(new)), label2id={n: i for i, n in enumerate(new)})
    carried = carry_labels(model, head, "base-run")
    weight, bias = model.classifier.weight, model.classifier.bias
    for row, name in enumerate(new):
        if name in old:
            assert torch.equal(weight[row], old[name][0]) and bias[row] == old[name][1]
    assert bias[1] == 0 and not any(torch.equal(weight[1], w) for w, _ in old.values())  # 'refund': a fresh row
    assert carried.new_weights == {"classifier.weight", "classifier.bias"}
    assert carried.warnings == ["Training on from base-run: kept 3 label(s), added 'refund', dropped 'spam'. "
                                "The added labels start untrained."]
    assert model.config.id2label == dict(enumerate(new)) and model.num_labels == 4
    out = model(input_ids=torch.tensor([[1, 2, 3]]), labels=torch.tensor([1]))
    assert out.logits.shape == (1, 4) and torch.isfinite(out.loss)


def test_the_same_labels_in_the_same_order_change_nothing():
    model = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=16,
                                                     id2label={0: "a", 1: "b"}))
    weight = model.classifier.weight
    carried = carry_labels(model, dict(num_labels=2, id2label={0: "a", 1: "b"}, label2id={"a": 0, "b": 1}), "x")
    assert model.classifier.weight is weight and not carried.new_weights and not carried.warnings


def test_the_paired_bootstrap_of_identical_models_is_zero():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 200)
    predicted = np.where(rng.random(200) < 0.7, truth, rng.integers(0, 3, 200))
    eye = np.eye(3)
    stats = np.hstack([eye[truth], eye[predicted], eye[truth] * eye[predicted]])
    assert paired_bootstrap(stats, stats.copy(), METRICS["macro_f1"].value) == (0.0, 0.0)
    same = compare_metric(METRICS["accuracy"], stats, stats)
    assert same.difference == 0 and same.low <= 0 <= same.high and same.verdict == "not worse"
    assert same.served == pytest.approx((truth == predicted).mean())
    perfect = np.hstack([eye[truth], eye[truth], eye[truth]])
    assert compare_metric(METRICS["macro_f1"], perfect, stats).verdict == "worse"
    better = compare_metric(METRICS["macro_f1"], stats, perfect)
    assert better.verdict == "not worse" and better.low > 0


def toy_frame(labels: tuple[str, ...]) -> pd.DataFrame:
    words = {"pos": "great lovely superb", "neg": "awful broken poor", "mixed": "fine but slow"}
    return pd.DataFrame([{"review": f"this is {w} {i}", "sentiment": label} for i in range(12)
                         for label in labels for w in words[label].split()])


@pytest.fixture(scope="module")
def first_run(tiny_model_dir, tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("runs"))
    plan = service.plan_run(toy_frame(("pos", "neg")), {**SETTINGS, "base_model": str(tiny_model_dir)})
    job, outcome = service.train(plan, store)
    assert isinstance(outcome, ev.Finished)
    return store, job.run_dir


def test_a_run_trains_on_from_a_run_with_the_new_label_set(first_run, tmp_path):
    store, base = first_run
    assert own_labels(base) == ["neg", "pos"] and runs_to_train_on(store, "classification", None)[0].path == base
    assert base_model_path(base.name, store) == str(base)  # a run id names its folder
    plan = service.plan_run(toy_frame(("pos", "mixed")), {**SETTINGS, "base_model": base_model_path(base.name, store)})
    job, outcome = service.train(plan, store)
    assert isinstance(outcome, ev.Finished)
    started = next(e for e in job.events.since(0) if isinstance(e, ev.Started))
    assert any("kept 1 label(s), added 'mixed', dropped 'neg'" in w for w in started.warnings)
    predictor = Predictor(job.run_dir)
    assert predictor.label_names == ["mixed", "pos"]
    assert {p.label for p in predictor.predict(["this is fine but slow 3", "this is great 1"])} <= {"mixed", "pos"}

    extra = tmp_path / "reviewed.csv"
    toy_frame(("pos", "neg")).head(6).assign(review=lambda f: f.review + " again").to_csv(extra, index=False)
    report = compare_held_out(base, job.run_dir, extra)
    assert [c.rows for c in report.comparisons] == ["validation + extra rows", "extra rows"]
    assert report.comparisons[1].count == 6 and report.verdict in ("worse", "not worse")
    assert compare_held_out(base, base).comparisons[0].metrics[0].difference == 0
    with pytest.raises(ConfigError, match="same task"):
        service.plan_run(toy_frame(("pos", "neg")).assign(sentiment=lambda f: range(len(f))),
                         {**SETTINGS, "task": "regression", "base_model": str(base)}, {"target": "sentiment"})


def test_the_cli_compares_two_runs_on_held_out_rows(first_run, capsys):
    store, base = first_run
    argv = ["--runs", str(store.root), "compare-held-out", "--served", base.name, "--new", str(base), "--json"]
    assert cli(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "not worse" and report["comparisons"][0]["metrics"][0]["metric"] == "macro-F1"


def test_the_train_tab_offers_finished_runs_of_the_same_task(first_run):
    from ui.context import AppContext
    from ui.train_tab import base_model_update, model_choices

    store, base = first_run
    ctx = AppContext(store=store)
    assert str(base) in [value for _, value in model_choices(ctx, "classification", None)]
    assert str(base) not in [value for _, value in model_choices(ctx, "regression", None)]
    update = base_model_update(ctx, {"task": "classification", "model": "all-MiniLM-L6-v2"}, None)
    assert update["value"] == "all-MiniLM-L6-v2"  # offered, not chosen for the person


@pytest.mark.slow
def test_a_lora_run_trains_on_from_a_lora_run_and_predicts_its_own_labels(tiny_model_dir):
    store = RunStore()
    first, _ = service.train(service.plan_run(toy_frame(("pos", "neg")), {**SETTINGS, "base_model": str(tiny_model_dir),
                                                                           "lora": True}), store)
    job, outcome = service.train(service.plan_run(toy_frame(("pos", "mixed")), {**SETTINGS, "lora": True,
                                                                                "base_model": str(first.run_dir)}), store)
    assert isinstance(outcome, ev.Finished) and Predictor(job.run_dir).label_names == ["mixed", "pos"]
