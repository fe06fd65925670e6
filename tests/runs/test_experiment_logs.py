"""Every run writes its curves as TensorBoard event files that TensorBoard's own reader reads back."""
from __future__ import annotations

import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from core.runs import events as ev
from core.runs.config import TrainConfig
from core.runs.run_folder import RunFolder
from core.runs.store import RunStore
from core.tasks import prepare_data
from core.train.engine import TrainingJob


def test_tensorboard_holds_every_step_and_evaluation_of_the_run(tiny_model_dir, toy_csv, tmp_path):
    config = TrainConfig(base_model=str(tiny_model_dir), epochs=2, batch_size=8, max_length=32, learning_rate=1e-3,
                         precision="fp32", eval_every_steps=5, early_stopping_patience=0)
    job = TrainingJob(config, prepare_data("classification", pd.read_csv(toy_csv)), RunStore(tmp_path), data_name="toy")
    job.run()
    events = job.events.since(0)
    steps = [e for e in events if isinstance(e, ev.Step)]
    evaluations = [e for e in events if isinstance(e, ev.Evaluation)]
    board = EventAccumulator(str(job.run_dir / RunFolder.TENSORBOARD))
    board.Reload()
    assert {"train/loss", "train/learning_rate", "validation/loss", "validation/macro_f1"} <= set(board.Tags()["scalars"])
    assert [(s.step, pytest.approx(s.value)) for s in board.Scalars("train/loss")] == [(e.step, e.loss) for e in steps]
    assert [(s.step, pytest.approx(s.value)) for s in board.Scalars("validation/macro_f1")] == [
        (e.step, e.metrics["macro_f1"]) for e in evaluations] and len(evaluations) >= 2


def test_mlflow_run_holds_settings_curves_and_the_model(tiny_model_dir, toy_csv, tmp_path):
    from mlflow import MlflowClient

    config = TrainConfig(base_model=str(tiny_model_dir), epochs=2, batch_size=8, max_length=32, learning_rate=1e-3,
                         precision="fp32", eval_every_steps=5, early_stopping_patience=0, mlflow="local")
    store = RunStore(tmp_path / "runs")
    job = TrainingJob(config, prepare_data("classification", pd.read_csv(toy_csv)), store, data_name="toy")
    job.run()
    events = job.events.since(0)
    assert isinstance(events[-1], ev.Finished), events[-1]
    client = MlflowClient(tracking_uri=f"sqlite:///{store.root / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("sft-studio").experiment_id])[0]
    assert run.info.status == "FINISHED" and run.info.run_name == job.run_dir.name
    assert run.data.params["learning_rate"] == "0.001" and run.data.tags["task"] == "classification"
    steps = [e for e in events if isinstance(e, ev.Step)]
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert [(m.step, pytest.approx(m.value)) for m in history] == [(s.step, s.loss) for s in steps]
    evaluations = [e for e in events if isinstance(e, ev.Evaluation)]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_macro_f1")] == [e.step for e in evaluations]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"model/model.safetensors", "model/config.json", "model/metrics.json"} <= artifacts


def test_a_bad_mlflow_store_fails_the_run_with_a_message(tiny_model_dir, toy_csv, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    config = TrainConfig(base_model=str(tiny_model_dir), max_steps=2, batch_size=8, max_length=32,
                         mlflow=f"sqlite:///{tmp_path}/a-file/mlflow.db")
    job = TrainingJob(config, prepare_data("classification", pd.read_csv(toy_csv)), RunStore(tmp_path), data_name="toy")
    job.run()
    last = job.events.since(0)[-1]
    assert isinstance(last, ev.Failed) and f"Could not log to MLflow at 'sqlite:///{tmp_path}/a-file" in last.message


def test_a_database_uri_keeps_artifacts_beside_the_runs_not_in_the_working_folder(tmp_path):
    from core.runs.mlflow_log import tracking_uri

    uri, artifacts = tracking_uri(f"sqlite:///{tmp_path}/other.db", tmp_path / "runs")
    assert uri == f"sqlite:///{tmp_path}/other.db" and artifacts == (tmp_path / "runs" / "mlartifacts").as_uri()
    assert tracking_uri("http://127.0.0.1:5000", tmp_path) == ("http://127.0.0.1:5000", None)
