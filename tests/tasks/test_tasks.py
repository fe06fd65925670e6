"""Every task through the same engine on a tiny random BERT: data checks, training, prediction, export, resume."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from toy_data import toy_frames
from transformers import AutoTokenizer

from core.common.errors import DataError
from core.data.modalities import MODALITIES
from core.deploy.export import export_run
from core.deploy.predict import Predictor
from core.runs import events as ev
from core.runs.config import TrainConfig
from core.runs.store import RunStore
from core.tasks import TASKS, detect_task, get_task, prepare_data
from core.tasks.outputs import OUTPUTS
from core.tasks.token_classification import to_iob2
from core.train.engine import TrainingJob


@pytest.mark.parametrize("task", list(toy_frames()))
def test_the_data_tab_recognises_each_task(task):
    assert detect_task(toy_frames()[task]) == task


def test_every_registered_task_describes_itself_for_the_ui():
    for name, task in TASKS.items():
        assert task.name == name and task.roles and task.view.cards and task.primary_metric
        assert task.output is OUTPUTS[task.output.name]
        assert task.modality is MODALITIES[task.modality.name]


@pytest.mark.parametrize("task", [t for t in toy_frames() if t != "classification"])
def test_each_task_trains_predicts_exports_and_resumes(task, tiny_model_dir, tmp_path):
    frame = toy_frames()[task]
    data = prepare_data(task, frame)
    config = TrainConfig(task=task, base_model=str(tiny_model_dir), epochs=2, batch_size=8, max_length=32,
                         learning_rate=1e-3, eval_every_steps=6, early_stopping_patience=0, precision="fp32")
    job = TrainingJob(config, data, RunStore(tmp_path / "runs"), data_name=task)
    job.run()
    events = job.events.since(0)
    assert isinstance(events[-1], ev.Finished), events[-1]
    spec = get_task(task)
    evaluation = next(e for e in events if isinstance(e, ev.Evaluation))
    assert evaluation.primary == spec.primary_metric and spec.primary_metric in evaluation.metrics
    metrics = events[-1].metrics
    assert metrics["task"] == task and metrics["baseline"]["name"]
    fitted = next(e for e in events if isinstance(e, ev.Baselines))  # from its thread, before the end
    assert metrics["classical"] == fitted.classical and fitted.classical["name"] == spec.classical_name
    assert spec.primary_metric in fitted.classical or "skipped" in fitted.classical
    assert (job.run_dir / "validation_predictions.csv").is_file()

    predictor = Predictor(job.run_dir)
    rows = {role: frame[data.columns[role]].head(3).tolist() for role in predictor.inputs if role in data.columns}
    rows = rows or {"text": ["John met Mary in Paris", "Mary left", "Paris"]}
    predictions = predictor.predict(rows)
    assert len(predictions) == 3 and all(predictor.task.output.columns(p) for p in predictions)

    exported = export_run(job.run_dir, tmp_path / "exported")
    plain = spec.model_class.from_pretrained(exported, use_safetensors=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(exported)
    features = spec.encode_inputs(tokenizer, rows, 32)
    with torch.inference_mode():
        logits = plain(input_ids=torch.tensor(features["input_ids"][:1]),
                       **({"token_type_ids": torch.tensor(features["token_type_ids"][:1])}
                          if "token_type_ids" in features else {})).logits[0].numpy()
    again = spec.format([logits], {k: v[:1] for k, v in features.items()}, plain.config)[0]
    assert spec.output.columns(again) == spec.output.columns(predictions[0])  # the folder alone gives the app's answer

    resumed = TrainingJob.resume(job.run_dir)
    assert len(resumed.data) == len(data) and resumed.data.label_names == data.label_names
    assert resumed.data.targets == pytest.approx(data.targets) if task.endswith("regression") else \
        resumed.data.targets == data.targets


def test_regression_reports_non_numeric_targets_by_row():
    frame = toy_frames()["regression"]
    frame.loc[[3, 10], "score"] = ["n/a", "high"]
    with pytest.raises(DataError, match=r"2 value\(s\) that are not numbers.*row\(s\) 4 \('n/a'\), 11 \('high'\)"):
        prepare_data("regression", frame)


def test_regression_scaler_is_fitted_on_training_rows():
    data = prepare_data("regression", toy_frames()["regression"])
    train, _ = get_task("regression").split(data, 0.2, seed=1)
    state = get_task("regression").fit(train)
    assert state["target_mean"] == pytest.approx(np.mean(train.targets))
    assert state["target_std"] == pytest.approx(np.std(train.targets))


def test_few_distinct_scores_suggest_classes():
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(20)], "stars": [str(1 + i % 5) for i in range(20)]})
    assert detect_task(frame) == "classification"
    assert "Classify texts" in " ".join(prepare_data("regression", frame).warnings)


def test_short_texts_with_commas_are_not_taken_for_label_lists():
    """Texts built from a few repeating phrases ("great value, would buy again") are the text column, not labels."""
    phrases, endings = ["great value", "poor fit", "fast delivery"], ["would buy again", "never again", "as described"]
    frame = pd.DataFrame({"review": [f"{phrases[i % 3]}, {endings[i // 3 % 3]}" for i in range(30)],
                          "label": ["pos" if i % 3 != 1 else "neg" for i in range(30)]})
    assert detect_task(frame) == "classification"
    assert len(prepare_data("classification", frame)) == 30


def test_a_pair_missing_its_second_text_is_reported():
    frame = toy_frames()["pairs"]
    frame.loc[[0, 5], "sentence2"] = ""
    data = prepare_data("pairs", frame)
    assert data.rows_dropped == 2 and "2 labelled row(s) have no second text (column 'sentence2')" in data.warnings[0]


def test_pairs_are_encoded_as_one_tokenizer_pair(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    features = get_task("pairs").encode_inputs(tokenizer, {"text_a": ["a cat " * 40], "text_b": ["a dog"]}, 32)
    ids, segments = features["input_ids"][0], features["token_type_ids"][0]
    assert len(ids) == 32 and segments[-1] == 1 and ids.count(tokenizer.sep_token_id) == 2  # both sides kept


@pytest.mark.parametrize("cell, expected", [
    ("a|b", ["a", "b"]), ('["a", "b"]', ["a", "b"]), ("a; b", ["a", "b"]), ("Drama, Crime", ["Crime", "Drama"]),
])
def test_multi_label_cells_in_every_format(cell, expected):
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(6)], "labels": [cell, "a"] * 3})
    data = prepare_data("multi_label", frame)
    assert sorted(data.label_names[i] for i in data.targets[0]) == sorted(expected)


def test_multi_label_from_one_0_1_column_per_label():
    frame = pd.DataFrame({"comment": [f"comment number {i}" for i in range(8)], "toxic": list("10100000"),
                          "insult": list("11000000"), "threat": list("00010000")})
    assert detect_task(frame) == "multi_label"
    data = prepare_data("multi_label", frame)
    assert data.label_names == ["insult", "threat", "toxic"] and len(data) == 8  # all-0 rows: no label applies
    assert [sorted(data.label_names[i] for i in row) for row in data.targets[:4]] == \
        [["insult", "toxic"], ["insult"], ["toxic"], ["threat"]]
    again = prepare_data("multi_label", get_task("multi_label").to_frame(data), {"text": "text", "labels": "labels"})
    assert again.targets == data.targets  # what a resumed run reads back


def test_multi_label_rows_without_labels():
    frame = toy_frames()["multi_label"]
    frame.loc[[1, 2], "genres"] = ""
    data = prepare_data("multi_label", frame)
    assert data.rows_dropped == 2 and any("2 row(s) have no labels" in w for w in data.warnings)
    frame["genres"] = ""
    with pytest.raises(DataError, match="have no labels"):
        prepare_data("multi_label", frame, {"labels": "genres"})


def test_multi_label_thresholds_are_tuned_per_label_and_saved():
    task = get_task("multi_label")
    probs = np.array([[0.3, 0.9], [0.2, 0.8], [0.35, 0.1], [0.1, 0.2]] * 5)
    truth = np.array([[1, 1], [0, 1], [1, 0], [0, 0]] * 5)
    thresholds = task.tune_thresholds(probs, truth)
    assert thresholds[0] == pytest.approx(0.25) and 0.2 < thresholds[1] <= 0.8


@pytest.mark.parametrize("tags, expected", [
    (["B-PER", "I-PER", "O", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),  # BIO
    (["I-PER", "I-PER", "O", "I-LOC", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]),  # IOB1
    (["B-PER", "E-PER", "S-LOC", "S-LOC"], ["B-PER", "I-PER", "B-LOC", "B-LOC"]),  # BIOES
    (["B-PER", "M-PER", "E-PER", "O"], ["B-PER", "I-PER", "I-PER", "O"]),  # BMES
])
def test_tag_schemes_normalise_to_iob2(tags, expected):
    assert to_iob2(tags)[0] == expected


@pytest.mark.parametrize("tokens, tags, message", [
    (["a", "b"], ["O"], "different numbers of tokens and tags.*row 1: 2 tokens, 1 tags"),
    (["a", "b"], ["O", "X-PER"], "unknown prefix"),
    (["a", "b", "c", "d"], ["S-PER", "O", "I-LOC", "O"], "mixes tag schemes"),
    (["a", "b"], ["O", "O"], "every tag is O"),
])
def test_ner_bad_input_messages(tokens, tags, message):
    frame = pd.DataFrame({"tokens": [json.dumps(tokens)] * 3, "tags": [json.dumps(tags)] * 3})
    with pytest.raises(DataError, match=message):
        prepare_data("token_classification", frame)


def test_ner_reads_conll_with_docstart_and_warns_about_cut_entities(tmp_path, tiny_model_dir):
    from core.data.tables import read_table

    lines = ["-DOCSTART- -X- O O", ""] + [f"w{i} NN O" for i in range(40)] + ["Paris NNP B-LOC", ""] + \
            ["John NNP B-PER", "left VB O", ""]
    path = tmp_path / "ner.txt"
    path.write_text("\n".join(lines * 4), encoding="utf-8")
    frame = read_table(path)
    assert list(frame.columns) == ["tokens", "tags"] and len(frame) == 8
    task = get_task("token_classification")
    data = prepare_data("token_classification", frame)
    encoded = task.encode(AutoTokenizer.from_pretrained(tiny_model_dir), data, 16, {})
    assert all(row[1:].count(-100) < len(row) for row in encoded.labels)
    warning = " ".join(task.encoding_warnings(encoded, data))
    assert "4 sentence(s) are longer than the max length" in warning and "holding 4 entities" in warning


def test_first_sub_token_carries_the_tag(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    data = prepare_data("token_classification", pd.DataFrame({
        "tokens": [json.dumps(["Schwarzenegger", "visited", "Washington"])] * 2,
        "tags": [json.dumps(["B-PER", "O", "B-LOC"])] * 2}))
    encoded = get_task("token_classification").encode(tokenizer, data, 32, {})
    labelled = [label for label in encoded.labels[0] if label != -100]
    names = data.label_names
    assert [names[i] for i in labelled] == ["B-PER", "O", "B-LOC"]  # one label per word, not per piece
    assert len(encoded.input_ids[0]) > 5


def test_ner_spans_have_character_offsets():
    from core.tasks.token_classification import split_words

    words, offsets = split_words("John lives in 北京, ok")
    assert words == ["John", "lives", "in", "北", "京", ",", "ok"] and offsets[3] == (14, 15)


def test_every_sample_is_detected_as_its_task_and_prepares(sample_cache):
    from core.data.samples import SAMPLES, sample_path
    from core.data.tables import read_table

    for name, sample in SAMPLES.items():
        frame = read_table(sample_path(name))
        assert detect_task(frame) == sample.task, name
        assert len(prepare_data(sample.task, frame)) >= (200 if sample.archive else 500), name  # images: zips
