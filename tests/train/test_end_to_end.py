"""Fine-tune the real default model (all-MiniLM-L6-v2) on real BBC news; CLI and prediction round trip."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from core.data.samples import build_sample, sample_path
from core.data.tables import read_table
from core.deploy.predict import Predictor
from core.runs import events as ev
from core.runs.config import TrainConfig
from core.runs.store import RunStore
from core.tasks import prepare_data
from core.train.engine import TrainingJob


@pytest.fixture(scope="module")
def trained_bbc(sample_cache, tmp_path_factory):
    """One real fine-tune shared by the tests below: 1 epoch on 480 BBC articles."""
    store = RunStore(tmp_path_factory.mktemp("runs"))
    data = prepare_data("classification", read_table(sample_path("bbc_news")))
    job = TrainingJob(TrainConfig(epochs=1, batch_size=16, max_length=128), data, store, data_name="bbc")
    job.run()
    return job


@pytest.mark.slow
def test_real_model_beats_majority_baseline_on_held_out_rows(trained_bbc):
    last = trained_bbc.events.since(0)[-1]
    assert isinstance(last, ev.Finished), last
    metrics = last.metrics
    print(f"\nBBC held-out accuracy {metrics['accuracy']:.4f} (baseline {metrics['baseline']['accuracy']:.4f}), "
          f"{metrics['train_seconds']:.1f} s, {metrics['samples_per_s']:.1f} samples/s, {metrics['precision']}")
    assert metrics["accuracy"] >= metrics["baseline"]["accuracy"] + 0.4
    assert metrics["macro_f1"] > 0.6


@pytest.mark.slow
def test_reloaded_run_gives_the_same_predictions(trained_bbc):
    saved = pd.read_csv(trained_bbc.run_dir / "validation_predictions.csv")
    predictor = Predictor(trained_bbc.run_dir)
    predictions = predictor.predict(saved["text"].tolist())
    agree = sum(p.label == want for p, want in zip(predictions, saved["predicted"])) / len(saved)
    assert agree >= 0.98  # bf16 evaluation vs fp32 reload may flip a near-tie
    assert set(predictions[0].probabilities) == set(predictor.label_names)
    assert sum(predictions[0].probabilities.values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
def test_batch_prediction_csv_neutralises_formulas(trained_bbc, tmp_path):
    source = tmp_path / "in.csv"
    pd.DataFrame({"text": ["=HYPERLINK(\"http://x\")", "The match ended two goals to one", "@SUM(A1)"]}).to_csv(source, index=False)
    out = tmp_path / "out.csv"
    Predictor(trained_bbc.run_dir).predict_file(source, out)
    written = pd.read_csv(out, encoding="utf-8-sig")
    assert written["text"][0].startswith("'=") and written["text"][2].startswith("'@")
    assert {"predicted_label", "confidence"} <= set(written.columns)
    assert written["predicted_label"][1] == "sports"


def run_cli(*args, env_runs):
    return subprocess.run([sys.executable, "-m", "core", "--runs", str(env_runs), *args],
                          capture_output=True, text=True, timeout=600)


def test_json_lines_ner_with_misshapen_tokens_and_tags_exits_2_with_a_message(tmp_path):
    bad = tmp_path / "ner.jsonl"  # found on unseen data: a list cell beside a string and a number (issue 26)
    bad.write_text('{"tokens": ["a", "b"], "tags": ["B-X"]}\n{"tokens": "notalist", "tags": 3}\n'
                   '{"tokens": ["c", "d"], "tags": ["O", "B-X"]}\n')
    for flags in ([], ["--task", "token_classification"]):
        result = run_cli("train", "--data", str(bad), *flags, env_runs=tmp_path / "runs")
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("error: ")


def test_a_conll_file_with_a_line_missing_its_tag_names_the_line(tmp_path):
    bad = tmp_path / "tags.txt"
    sentences = ["John B-PER\nlives O\nin O\nParis B-LOC\n", "Mary B-PER\nworks O\nthere O\n"]
    bad.write_text("\n".join(sentences * 2).replace("works O", "works", 1))
    result = run_cli("train", "--data", str(bad), env_runs=tmp_path / "runs")
    assert result.returncode == 2 and "Line 7 of the CoNLL file has a token but no tag" in result.stderr, result.stderr


def test_a_score_column_with_a_few_words_is_read_as_scores_and_names_the_rows(tmp_path):
    bad = tmp_path / "scores.csv"
    scores = [f"{i * 0.37:.2f}" for i in range(30)]
    scores[4], scores[11] = "N/A", "abc"
    bad.write_text("text,score\n" + "".join(f"review number {i},{s}\n" for i, s in enumerate(scores)))
    result = run_cli("train", "--data", str(bad), env_runs=tmp_path / "runs")
    assert result.returncode == 2, result.stderr
    # "N/A" reads as a missing score (that row is left out); "abc" is named
    assert "score column 'score' has 1 value(s) that are not numbers, in data row(s) 12 ('abc')" in result.stderr


def test_cli_bad_input_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\n" + "".join(f"row {i},same\n" for i in range(5)))
    result = run_cli("train", "--data", str(bad), env_runs=tmp_path / "runs")
    assert result.returncode == 2
    assert "same label" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("train", "--data", str(tmp_path / "missing.csv"), env_runs=tmp_path / "runs")
    assert result.returncode == 2 and "does not exist" in result.stderr


@pytest.mark.slow
def test_cli_train_predict_and_list(tmp_path, tiny_model_dir, toy_csv):
    runs = tmp_path / "runs"
    result = run_cli("train", "--data", str(toy_csv), "--base-model", str(tiny_model_dir), "--epochs", "1",
                     "--batch-size", "8", "--precision", "fp32", env_runs=runs)
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout and "run folder" in result.stdout
    run_dir = next(runs.iterdir())
    result = run_cli("predict", "--run", str(run_dir), "I love it", "I hate it", env_runs=runs)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 2
    listing = run_cli("runs", env_runs=runs)
    assert run_dir.name in listing.stdout and "finished" in listing.stdout


@pytest.mark.slow
def test_cli_column_roles_for_sentence_pairs(tmp_path, tiny_model_dir):
    from toy_data import toy_frames

    data = tmp_path / "pairs.csv"
    toy_frames()["pairs"].rename(columns={"sentence1": "left", "sentence2": "right"}).to_csv(data, index=False)
    runs = tmp_path / "runs"
    common = ["--data", str(data), "--task", "pairs", "--base-model", str(tiny_model_dir), "--epochs", "1",
              "--precision", "fp32"]
    wrong = run_cli("train", *common, "--col", "question=left", env_runs=runs)
    assert wrong.returncode == 2 and "roles are: text_a, text_b, label" in wrong.stderr
    result = run_cli("train", *common, "--col", "text_a=left", "--col", "text_b=right", env_runs=runs)
    assert result.returncode == 0 and "first text 'left'" in result.stdout, result.stderr
    predicted = run_cli("predict", "--run", str(next(runs.iterdir())), "good thing", "bad thing", env_runs=runs)
    assert predicted.returncode == 0 and predicted.stdout.split("\t")[0] in {"same", "different"}, predicted


def test_samples_are_deduplicated_and_stratified(sample_cache):
    frame = build_sample("chinese_reviews")
    assert frame["text"].is_unique
    counts = frame["label"].value_counts()
    assert counts.min() == counts.max() == 300
