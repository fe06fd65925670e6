"""The served model's monitor: request log in SQLite, drift against the validation rows, feedback, Prometheus,
and predictions that never fail because of the log."""
from __future__ import annotations

import random
import sqlite3
import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from core.cli import main as cli
from core.data.samples import build_sample
from core.deploy.monitoring.drift import compare
from core.deploy.monitoring.observe import observe
from core.deploy.monitoring.reference import Reference
from core.deploy.monitoring.report import open_log
from core.deploy.predict import Predictor
from core.deploy.serve import MonitorOptions, create_app
from core.runs.config import TrainConfig
from core.runs.run_folder import RunFolder
from core.runs.store import RunStore
from core.tasks import prepare_data
from core.train.engine import TrainingJob


@pytest.fixture(scope="module")
def served_run(tiny_model_dir, sample_cache, tmp_path_factory):
    """A tiny-model classifier of 600 real tweets (120 validation rows)."""
    frame = build_sample("tweet_sentiment", rows_per_class=200, seed=2)
    config = TrainConfig(base_model=str(tiny_model_dir), epochs=2, batch_size=16, max_length=48,
                         learning_rate=1e-3, precision="fp32")
    job = TrainingJob(config, prepare_data("classification", frame), RunStore(tmp_path_factory.mktemp("mon")),
                      data_name="tweets")
    job.run()
    return job.run_dir


def other_texts(sample: str, n: int) -> list[str]:
    frame = build_sample(sample, rows_per_class=n, seed=5)
    return frame[[c for c in frame.columns if frame[c].astype(str).str.len().mean() > 20][0]].astype(str).tolist()[:n]


@pytest.mark.slow
def test_validation_traffic_raises_no_alarm_and_other_samples_do(served_run):
    predictor = Predictor(served_run)
    rows = {"text": RunFolder(served_run).predictions()["text"].tolist()}
    observed = observe(predictor.tokenizer, predictor.task.output, rows, predictor.predict(rows))
    reference = Reference.of(predictor.task.output, observed)
    rng = random.Random(0)
    windows = [[rng.choice(observed) for _ in range(100)] for _ in range(40)]
    alarms = [c.name for window in windows for c in compare(reference, window) if c.drifted]
    print(f"\nfalse alarms: {len(alarms)} of {40 * len(compare(reference, windows[0]))} checks")
    assert len(alarms) <= 1, alarms  # expected: about 40 x 4 x 0.001

    for sample in ("bbc_news", "chinese_reviews"):  # other topics and lengths; another language
        texts = {"text": other_texts(sample, 100)}
        checks = compare(reference, observe(predictor.tokenizer, predictor.task.output, texts, predictor.predict(texts)))
        assert any(c.drifted for c in checks), (sample, checks)
        if sample == "chinese_reviews":
            assert next(c for c in checks if c.feature == "unknown_rate").drifted or \
                next(c for c in checks if c.feature == "input_chars").drifted


def test_server_logs_takes_feedback_reports_drift_and_serves_prometheus(served_run, tmp_path, capsys):
    database = tmp_path / "log.db"
    app = create_app(served_run, monitor_options=MonitorOptions(str(database), log_inputs=True))
    validation = RunFolder(served_run).predictions()["text"].tolist()
    with TestClient(app) as client:
        answers = client.post("/v1/predict", json={"inputs": validation[:40]}).json()["predictions"]
        assert all(len(a["id"]) == 32 and a["label"] for a in answers)
        labels = RunFolder(served_run).data()["label_names"]
        for n, answer in enumerate(answers[:20]):  # 15 confirmed, 5 corrected to another class: accuracy 0.75
            truth = answer["label"] if n < 15 else next(label for label in labels if label != answer["label"])
            assert client.post("/v1/feedback", json={"id": answer["id"], "label": truth}).status_code == 202
        bad = client.post("/v1/feedback", json={"id": answers[0]["id"], "label": "no such class"})
        assert bad.status_code == 422 and "not one of this model's labels" in bad.json()["error"]
        app_monitor = client.get("/v1/monitor")  # may run before the writer thread: poll until written
        deadline = time.time() + 10
        while app_monitor.json()["feedback"]["labelled"] < 20 and time.time() < deadline:
            time.sleep(0.05)
            app_monitor = client.get("/v1/monitor")
        found = app_monitor.json()
        assert found["feedback"] == {"labelled": 20, "metric": "accuracy", "value": 0.75}
        assert found["window"] == 40 and not found["drifted"], found["verdict"]
        assert "No drift" in found["verdict"]

        for start in range(0, 100, 25):
            client.post("/v1/predict", json={"inputs": other_texts("chinese_reviews", 100)[start:start + 25]})
        deadline = time.time() + 10
        while client.get("/v1/monitor?last=100").json()["window"] < 100 and time.time() < deadline:
            time.sleep(0.05)
        shifted = client.get("/v1/monitor?last=100").json()
        assert shifted["drifted"] and shifted["verdict"].startswith("Drift"), shifted["verdict"]

        families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
        assert families["sft_predictions"].samples[0].value == 140
        assert {s.labels["feature"] for s in families["sft_drift_detected"].samples} >= {"outcome", "input_chars"}
        assert families["sft_feedback_score"].samples[0].value == 0.75

    assert cli.main(["monitor", "--db", str(database), "--last", "100"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Drift in the last 100 predictions") and "unknown-token share" in printed
    assert cli.main(["monitor", "--db", str(tmp_path / "none.db")]) == 2
    assert "There is no request log" in capsys.readouterr().err

    table, added = open_log(database).training_table()
    assert added == 20 and len(table) == len(RunFolder(served_run).dataset()) + 20
    path = tmp_path / "again.csv"
    table.to_csv(path, index=False)
    again = prepare_data("classification", pd.read_csv(path))  # the Data tab can train on it
    assert len(again) == len(table)


def test_a_locked_or_unopenable_database_never_fails_a_prediction(served_run, tmp_path):
    database = tmp_path / "locked.db"
    app = create_app(served_run, monitor_options=MonitorOptions(str(database), max_rows=30))
    with TestClient(app) as client:
        client.post("/v1/predict", json={"inputs": ["first"]})
        holder = sqlite3.connect(database, timeout=0)
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        answers = [client.post("/v1/predict", json={"inputs": [f"text {i}"]}) for i in range(5)]
        assert all(a.status_code == 200 and a.json()["predictions"][0]["label"] for a in answers)
        app.state.monitor.log.flush()  # the writer gave up on them (1 s lock timeout)
        holder.rollback()
        holder.close()
        for i in range(60):  # the lock is gone: writing resumes, and the log keeps to max_rows
            client.post("/v1/predict", json={"inputs": [f"more {i}"]})
        app.state.monitor.log.flush()
        stats = app.state.monitor.log.stats
        assert stats.failed >= 1 and "locked" in stats.last_error, stats
        count = sqlite3.connect(database).execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
        assert 30 <= count < 60, count

    broken = create_app(served_run, monitor_options=MonitorOptions("sqlite:////proc/no-such-dir/monitor.db"))
    with TestClient(broken) as client:
        assert client.post("/v1/predict", json={"inputs": ["still answered"]}).json()["predictions"][0]["label"]
        report = client.get("/v1/monitor")
        assert report.status_code == 503 and "The monitor is off" in report.json()["error"]
        assert client.get("/healthz").json()["monitor"].startswith("The monitor is off")
