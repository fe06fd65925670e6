"""The review queue: one place in four to a stable random sample, then classical disagreements, unusual inputs and
the least sure; the accuracy with its Wilson interval; answers from the CLI; the 70/30 reviewed-rows table; the
user's own column names; GET /v1/review."""
from __future__ import annotations

import json
import shutil
import sqlite3

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from core.cli import main as cli
from core.deploy.monitoring.log import FEEDBACK, META, PREDICTIONS, open_database
from core.deploy.monitoring.reference import Reference
from core.deploy.monitoring.report import LogView
from core.deploy.monitoring.review import (CLASSICAL, RANDOM, UNSURE, UNUSUAL, for_training, id_share, in_sample,
                                           review_queue, reviewed_table, wilson)
from core.deploy.serve import MonitorOptions, create_app
from core.runs.config import TrainConfig
from core.runs.run_folder import RunFolder
from core.runs.store import RunStore
from core.tasks import get_task, prepare_data
from core.tasks.rows import held_out as run_split, run_rows
from core.train.engine import TrainingJob

GOOD = ["great", "wonderful", "excellent", "lovely", "superb", "fantastic"]
BAD = ["terrible", "awful", "horrible", "dreadful", "useless", "disgusting"]


@pytest.fixture(scope="module")
def review_run(tiny_model_dir, tmp_path_factory):
    """A tiny-model sentiment classifier trained on a table whose columns are 'review' and 'sentiment'."""
    rows = [{"review": f"this film is {w} and I {'loved' if s == 'pos' else 'hated'} it {i}", "sentiment": s}
            for i in range(5) for s, words in (("pos", GOOD), ("neg", BAD)) for w in words]
    config = TrainConfig(base_model=str(tiny_model_dir), epochs=1, batch_size=16, max_length=32,
                         learning_rate=1e-3, precision="fp32")
    job = TrainingJob(config, prepare_data("classification", pd.DataFrame(rows)),
                      RunStore(tmp_path_factory.mktemp("review")), data_name="reviews")
    job.run()
    assert RunFolder(job.run_dir).data()["columns"] == {"text": "review", "label": "sentiment"}
    return job.run_dir


@pytest.fixture(scope="module")
def reference(review_run, tmp_path_factory) -> Reference:
    app = create_app(review_run, monitor_options=MonitorOptions(str(tmp_path_factory.mktemp("ref") / "ref.db")))
    return app.state.monitor.reference  # built on first serve and kept beside the model


def ids(count: int, sampled: bool, start: int = 0) -> list[str]:
    """``count`` prediction ids that are (or are not) in the random sample."""
    found, n = [], start
    while len(found) < count:
        n += 1
        if in_sample(f"id{n}") == sampled:
            found.append(f"id{n}")
    return found


def crafted_log(path, run_dir, reference: Reference, rows: list[tuple], answers: dict[str, str]) -> LogView:
    """A request log with ``rows`` of (id, text, label, confidence, input_chars) and ``answers`` (id -> label)."""
    engine = open_database(str(path))
    chars, unknown = sorted(reference.numbers["input_chars"]), sorted(reference.numbers["unknown_rate"])
    meta = {"folder": str(run_dir), "run": str(run_dir), "task": "classification", "output": "label",
            "inputs": ["text"], "labels": ["neg", "pos"], "inputs_logged": True}
    with engine.begin() as conn:
        conn.execute(META.insert(), [{"key": k, "value": json.dumps(v)} for k, v in meta.items()])
        conn.execute(PREDICTIONS.insert(), [
            {"id": i, "time": n, "latency_ms": 5.0, "outcome": json.dumps([label]), "confidence": confidence,
             "value": None, "input_chars": length or chars[len(chars) // 2], "unknown_rate": unknown[len(unknown) // 2],
             "prediction": json.dumps({"label": label}), "input": json.dumps({"text": text})}
            for n, (i, text, label, confidence, length) in enumerate(rows)])
        conn.execute(FEEDBACK.insert(), [{"id": i, "time": 0.0, "truth": json.dumps(t)} for i, t in answers.items()])
    return LogView(engine, meta, reference)


@pytest.fixture
def crafted(review_run, reference, tmp_path):
    """Two sampled predictions, two the classical model disagrees with, one unusually long, two plain ones; six
    answered (four of them in the sample: three right)."""
    sample, other = ids(6, True), ids(7, False)
    rows = [(sample[0], "this film is lovely and I loved it", "pos", 0.99, None),
            (sample[1], "this film is awful and I hated it", "neg", 0.98, None),
            (other[0], "this film is wonderful and I loved it", "neg", 0.9, None),  # the classical model: pos
            (other[1], "this film is terrible and I hated it", "pos", 0.6, None),  # the classical model: neg
            (other[2], "this film is great and I loved it", "pos", 0.95, 50_000),  # far longer than validation rows
            (other[3], "this film is superb and I loved it", "pos", 0.55, None),
            (other[4], "this film is dreadful and I hated it", "neg", 0.8, None),
            *[(i, "this film is excellent and I loved it", "pos", 0.9, None) for i in [*sample[2:], *other[5:]]]]
    answers = {sample[2]: "pos", sample[3]: "pos", sample[4]: "pos", sample[5]: "neg", other[5]: "pos",
               other[6]: "pos"}
    return crafted_log(tmp_path / "log.db", review_run, reference, rows, answers), sample, other


def test_queue_order_random_sample_then_classical_unusual_unsure(crafted):
    view, sample, other = crafted
    queue = review_queue(view, size=8)
    first, second = sorted(sample[:2], key=lambda i: id_share(i, "sample"))  # the sample's own stable order
    assert [(i.id, i.reason) for i in queue.items] == [
        (first, RANDOM), (other[1], CLASSICAL), (other[0], CLASSICAL), (other[2], UNUSUAL),  # least sure first
        (second, RANDOM), (other[3], UNSURE), (other[4], UNSURE)]
    assert queue.items[1].classical == "neg" and queue.items[3].classical is None
    assert queue.waiting == 7 and queue.labels == ["neg", "pos"]
    assert [i.id for i in review_queue(view, size=8).items] == [i.id for i in queue.items]  # stable across visits
    assert queue.accuracy.line() == ("6 reviewed, 83% right; on the random sample (4) accuracy 75% "
                                     "(95% Wilson interval 30%-95%).")


def test_wilson_interval_and_stable_shares():
    assert wilson(3, 4) == pytest.approx((0.3006, 0.9544), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    many = [f"{n:032x}" for n in range(20_000)]
    assert sum(map(in_sample, many)) / len(many) == pytest.approx(0.25, abs=0.01)
    assert sum(map(for_training, many)) / len(many) == pytest.approx(0.7, abs=0.01)


def test_cli_records_answers_and_refuses_bad_ones(crafted, capsys):
    view, _, other = crafted
    database = view.engine.url.database
    assert cli.main(["review", "--db", database, "--answer", f"{other[0]}=pos", "--answer", f"{other[1]}=neg"]) == 0
    assert "recorded 2 answer(s)" in capsys.readouterr().out
    truths = dict(sqlite3.connect(database).execute("SELECT id, truth FROM feedback").fetchall())
    assert json.loads(truths[other[0]]) == "pos" and json.loads(truths[other[1]]) == "neg"
    for flag, message in ((f"{other[2]}=happy", "not one of this model's labels"),
                          ("nosuchid=pos", "no prediction with the id nosuchid"), ("justanid", "ID=LABEL")):
        assert cli.main(["review", "--db", database, "--answer", flag]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert cli.main(["review", "--db", database, "--interactive"]) == 2  # pytest's stdin is no terminal
    assert "needs a terminal" in capsys.readouterr().err
    assert cli.main(["review", "--db", database, "--size", "3"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("3 of 5 predictions") and "8 reviewed" in printed


def test_table_splits_reviewed_rows_70_30_in_the_users_columns(crafted, review_run, tmp_path):
    view, _, _ = crafted
    copied = tmp_path / "run-copy"  # a run whose dataset.csv keeps the user's column names
    shutil.copytree(review_run, copied)
    folder = RunFolder(copied)
    folder.dataset().rename(columns={"text": "review", "label": "sentiment"}).to_csv(folder / RunFolder.DATASET,
                                                                                      index=False)
    served = RunFolder(review_run)  # both copies split alike: the same rows trained on, the same validation rows
    trained, validation, _ = run_split(get_task("classification"), run_rows(served), served.config())
    for run in (review_run, copied):
        view.meta["run"] = str(run)
        written = reviewed_table(view, tmp_path / "next.csv")
        table, held_out = pd.read_csv(written.path), pd.read_csv(written.held_out_path)
        original = RunFolder(run).dataset()
        assert list(table.columns) == list(held_out.columns) == list(original.columns)
        answered = dict(sqlite3.connect(view.engine.url.database).execute("SELECT id, truth FROM feedback").fetchall())
        training = [i for i in answered if for_training(i)]
        assert written.added == len(training) and written.held_out == len(answered) - len(training) == len(held_out)
        assert len(table) == len(trained) + len(training) == written.rows < len(original) + len(training)
        assert not set(validation.inputs["text"]) & set(table.iloc[:, 0])  # the served run's validation rows stay out
        assert written.held_out_path.name == "next_held_out.csv"
        assert len(prepare_data("classification", table)) == len(table)  # the Data tab can train on it
        queue = review_queue(view, size=8)  # the classical model reads either layout
        assert [i.reason for i in queue.items][1:4] == [CLASSICAL, CLASSICAL, UNUSUAL]


def test_v1_review_lists_the_queue_and_says_why_not(review_run, tmp_path):
    app = create_app(review_run, monitor_options=MonitorOptions(str(tmp_path / "a.db"), log_inputs=True))
    with TestClient(app) as client:
        texts = [f"this film is {w} and I loved it" for w in GOOD] + ["x" * 3000]
        answers = client.post("/v1/predict", json={"inputs": texts}).json()["predictions"]
        assert client.post("/v1/feedback", json={"id": answers[0]["id"], "label": "pos"}).status_code == 202
        app.state.monitor.log.flush()
        found = client.get("/v1/review?size=3").json()
        assert len(found["items"]) == 3 and found["waiting"] == len(texts) - 1
        assert {"id", "inputs", "label", "confidence", "reason", "classical"} <= set(found["items"][0])
        assert found["accuracy"]["reviewed"] == 1 and found["labels"] == ["neg", "pos"]
    unlogged = create_app(review_run, monitor_options=MonitorOptions(str(tmp_path / "b.db")))
    with TestClient(unlogged) as client:
        refused = client.get("/v1/review")
        assert refused.status_code == 422 and "--log-inputs" in refused.json()["error"]
    with TestClient(create_app(review_run, monitor_options=None)) as client:
        off = client.get("/v1/review")
        assert off.status_code == 503 and "--no-monitor" in off.json()["error"]
