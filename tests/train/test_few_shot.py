"""The few-shot mode (SetFit in the engine): the mean-pooled model, the pairs, the head, when "auto" picks it, a run
end to end on the tiny BERT, and (slow) MiniLM with 8 rows per class against TF-IDF + logistic regression."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from transformers import AutoModelForSequenceClassification, BertConfig

from core.common.errors import ConfigError
from core.data.samples import build_sample
from core.deploy.export import export_run
from core.deploy.predict import Predictor
from core.models.mean_pooled import MeanPooledBertConfig, MeanPooledBertForSequenceClassification
from core.models.registry import DEFAULT_MODEL, REGISTRY
from core.runs import events as ev
from core.runs.config import FEW_SHOT_ROWS, TrainConfig
from core.runs.store import RunStore
from core.tasks import get_task, prepare_data
from core.tasks.metrics import classification_metrics
from core.tasks.rows import held_out
from core.train import service
from core.train.few_shot import ROUNDS, few_shot_mode, pair_rounds, sample_pairs
from core.train.few_shot_loop import write_head


def table(per_class: int, classes: int = 3) -> pd.DataFrame:
    """``per_class`` distinct short texts per class."""
    return pd.DataFrame([{"text": f"text {i} of class {c} with word w{c}", "label": f"c{c}"}
                         for c in range(classes) for i in range(per_class)])


def tiny_mean_pooled(labels: int = 3) -> MeanPooledBertForSequenceClassification:
    config = MeanPooledBertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, num_labels=labels)
    return MeanPooledBertForSequenceClassification(config).eval()


def test_the_model_saves_as_safetensors_and_loads_through_the_auto_class(tmp_path):
    model = tiny_mean_pooled()
    ids = torch.tensor([[1, 5, 7, 2, 0, 0], [1, 9, 2, 0, 0, 0]])
    mask = (ids > 0).long()
    model.save_pretrained(tmp_path, safe_serialization=True)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path, use_safetensors=True).eval()
    assert type(loaded) is MeanPooledBertForSequenceClassification
    with torch.no_grad():
        assert torch.allclose(model(ids, mask).logits, loaded(ids, mask).logits)
        # padding does not move the mean: the same row padded wider embeds the same
        wide = torch.nn.functional.pad(ids[:1], (0, 4))
        assert torch.allclose(model.embed(ids[:1], mask[:1]), model.embed(wide, (wide > 0).long()), atol=1e-5)


def test_a_base_checkpoint_loads_its_bert_weights(tiny_model_dir):
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    model, info = MeanPooledBertForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2,
                                                                          output_loading_info=True)
    assert not info["missing_keys"]  # a BERT classifier's checkpoint: "bert." weights and a classifier
    assert torch.equal(model.bert.encoder.layer[0].attention.self.query.weight,
                       base.bert.encoder.layer[0].attention.self.query.weight)
    minilm, info = MeanPooledBertForSequenceClassification.from_pretrained(REGISTRY[DEFAULT_MODEL].path(),
                                                                           num_labels=2, output_loading_info=True)
    assert set(info["missing_keys"]) == {"classifier.weight", "classifier.bias"}  # its keys have no "bert." prefix


@pytest.mark.parametrize("classes", [2, 3])
def test_the_fitted_head_gives_the_logistic_regressions_probabilities(classes):
    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(40, 16)).astype(np.float32), np.arange(40) % classes
    head = LogisticRegression(max_iter=1000).fit(features, labels)
    model = tiny_mean_pooled(classes)
    write_head(model.classifier, head)
    with torch.no_grad():
        probabilities = torch.softmax(model.classifier(torch.from_numpy(features)), -1).numpy()
    assert np.allclose(probabilities, head.predict_proba(features), atol=1e-5)


def test_pairs_are_balanced_with_true_targets():
    labels = [0] * 5 + [1] * 5 + [2] * 4 + [3]  # class 3 has one row: its positive pair is itself
    pairs = sample_pairs(labels, rounds=4, seed=0)
    assert len(pairs) == 2 * 4 * len(labels) and pairs.targets.sum() == len(pairs) / 2
    same = np.asarray(labels)[pairs.left] == np.asarray(labels)[pairs.right]
    assert np.array_equal(same, pairs.targets == 1)
    assert all((pairs.left[pairs.targets == 0] == row).sum() == 4 for row in range(len(labels)))
    assert not np.any((pairs.left == pairs.right) & (np.asarray(labels)[pairs.left] != 3))
    assert np.array_equal(sample_pairs(labels, 4, 0).right, pairs.right)  # seeded
    assert pair_rounds(24, 16) == ROUNDS and pair_rounds(3 * 64, 16) == ROUNDS and pair_rounds(2000, 16) == 2


def test_auto_picks_the_few_shot_mode_only_where_it_should(tiny_model_dir):
    small, large = prepare_data("classification", table(10)), prepare_data("classification", table(250))
    mode = few_shot_mode(TrainConfig(), small)  # MiniLM, 10 rows per class: 8 train, 2 validate
    assert mode.on and mode.reason.startswith("24 training rows, 8 per class: few-shot mode (SetFit")
    assert not few_shot_mode(TrainConfig(), large).on
    assert not few_shot_mode(TrainConfig(few_shot="off"), small).on
    assert not few_shot_mode(TrainConfig(base_model=str(tiny_model_dir)), small).on  # a local folder: auto is off
    assert few_shot_mode(TrainConfig(base_model=str(tiny_model_dir), few_shot="on"), small).on  # a BERT: it may
    assert not few_shot_mode(TrainConfig(lora=True), small).on
    scores = prepare_data("regression", pd.DataFrame({"text": [f"t {i}" for i in range(30)], "score": range(30)}))
    assert not few_shot_mode(TrainConfig(task="regression"), scores).on
    with pytest.raises(ConfigError, match="few-shot mode is for classifying texts"):
        few_shot_mode(TrainConfig(task="regression", few_shot="on"), scores)
    with pytest.raises(ConfigError, match="needs a sentence encoder"):
        few_shot_mode(TrainConfig(base_model="SmolLM2-135M-Instruct", few_shot="on"), small)
    edge = prepare_data("classification", table(FEW_SHOT_ROWS * 5 // 4))  # exactly FEW_SHOT_ROWS train per class
    assert not few_shot_mode(TrainConfig(), edge).on
    plan = service.plan_run(table(10), {})
    assert "8 per class: few-shot mode" in plan.describe()


def test_a_few_shot_run_end_to_end_on_the_tiny_bert(tiny_model_dir, tmp_path):
    plan = service.plan_run(table(10), {"base_model": str(tiny_model_dir), "few_shot": "on", "batch_size": 8,
                                        "max_length": 32, "precision": "fp32"})
    job, outcome = service.train(plan, RunStore(tmp_path / "runs"))
    assert isinstance(outcome, ev.Finished), getattr(outcome, "message", "")
    events = job.events.since(0)
    started = next(e for e in events if isinstance(e, ev.Started))
    steps = [e for e in events if isinstance(e, ev.Step)]
    assert "few-shot mode" in started.schedule and started.total_steps == 2 * ROUNDS * 24 // 8
    assert [s.step for s in steps] == list(range(1, started.total_steps + 1))
    assert sum(isinstance(e, ev.Evaluation) for e in events) == 1
    predictor = Predictor(job.run_dir)
    assert type(predictor.model) is MeanPooledBertForSequenceClassification
    texts = table(10)["text"].tolist()
    train = held_out(get_task("classification"), plan.data, plan.config)[0]
    predicted = [p.label for p in predictor.predict(train.texts)]
    assert np.mean([p == plan.data.label_names[y] for p, y in zip(predicted, train.targets)]) > 0.9  # the head fits
    onnx = export_run(job.run_dir, tmp_path / "onnx", "onnx")
    assert [p.label for p in Predictor(onnx).predict(texts)] == [p.label for p in predictor.predict(texts)]


@pytest.mark.slow
def test_minilm_with_8_rows_per_class_beats_tfidf(tmp_path):
    """The default model in the default ("auto") mode on 8 training rows per class of the tweets sample, scored on
    50 held-out rows per class it never saw, against the app's TF-IDF + logistic regression on the same rows."""
    frame = build_sample("tweet_sentiment", 200, seed=0)
    test = frame.groupby("label").head(50)
    rows = frame.drop(test.index).groupby("label").sample(10, random_state=0)  # 8 train + 2 validation per class
    plan = service.plan_run(rows, {"seed": 0})
    job, outcome = service.train(plan, RunStore(tmp_path / "runs"))
    started = next(e for e in job.events.since(0) if isinstance(e, ev.Started))
    assert isinstance(outcome, ev.Finished) and "few-shot mode" in started.schedule  # chosen by "auto"
    task = get_task("classification")
    truth = task.prepare(test, {"text": "text", "label": "label"})
    predicted = [p.label for p in Predictor(job.run_dir).predict(truth.texts)]
    names = truth.label_names
    few_shot = classification_metrics(truth.targets, [names.index(p) for p in predicted], names).macro_f1
    tfidf = task.classical_baseline(held_out(task, plan.data, plan.config)[0], truth, {})["macro_f1"]
    assert few_shot > tfidf, (few_shot, tfidf)


def test_a_search_on_a_few_shot_table_is_refused_with_the_way_out(tmp_path):
    from core.search.space import SearchSettings
    from core.search.study import create_study

    path = tmp_path / "small.csv"
    table(10).to_csv(path, index=False)
    with pytest.raises(ConfigError, match="few-shot mode .*24 training rows, 8 per class.*Set Few-shot mode to off"):
        create_study(path, {}, {}, SearchSettings(trials=2), tmp_path / "runs")
    record, _ = create_study(path, {"few_shot": "off"}, {}, SearchSettings(trials=2), tmp_path / "runs")
    assert record.settings["few_shot"] == "off"
