"""An MLflow run for a training run that asks for one (``TrainConfig.mlflow``): the settings as params, training
loss / learning rate / speed per step and every numeric validation metric per evaluation as metrics, the saved
model folder as artifacts, and the outcome as the run's status. ``local`` is a SQLite store beside the runs
(``runs/mlflow.db``, artifacts in ``runs/mlartifacts``): ``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from ..common.errors import ConfigError
from . import events as ev
from .config import TrainConfig

EXPERIMENT = "sft-studio"
LOCAL = "local"
FLUSH_EVERY = 50  # steps buffered per write (an evaluation or the end writes sooner)
STATUS = {ev.Finished: "FINISHED", ev.Failed: "FAILED", ev.Cancelled: "KILLED"}
MODEL_FILES = ("*.safetensors", "*.json", "*.jinja", "*.txt", "*.model")  # weights, configs, tokenizer, metrics


def tracking_uri(setting: str, runs_root: Path) -> tuple[str, str | None]:
    """The tracking URI and where a new experiment keeps artifacts: beside the runs (MLflow's default is ./mlruns in
    whatever folder the app was started from), unless a tracking server decides."""
    uri = f"sqlite:///{runs_root / 'mlflow.db'}" if setting == LOCAL else setting
    served = uri.startswith(("http://", "https://", "databricks"))
    return uri, None if served else (runs_root / "mlartifacts").as_uri()


class MlflowLog:
    """An event subscriber (process 0): opens its MLflow run at once, so a bad URI fails the run before training;
    later write errors only stop the logging."""

    def __init__(self, config: TrainConfig, run_dir: Path, runs_root: Path, tags: dict | None = None):
        from mlflow import MlflowClient

        uri, artifacts = tracking_uri(config.mlflow, runs_root)
        try:
            self.client = MlflowClient(tracking_uri=uri)
            experiment = self.client.get_experiment_by_name(EXPERIMENT)
            experiment_id = (experiment.experiment_id if experiment
                             else self.client.create_experiment(EXPERIMENT, artifact_location=artifacts))
            self.run_id = self.client.create_run(experiment_id, run_name=Path(run_dir).name,
                                                 tags={"run_dir": str(run_dir), **(tags or {})}).info.run_id
            params = [self._param(k, v) for k, v in asdict(config).items()]
            self.client.log_batch(self.run_id, params=params)
        except Exception as exc:  # any store error: the user named the store, so say which and why
            raise ConfigError(f"Could not log to MLflow at '{config.mlflow}': {type(exc).__name__}: {exc}") from exc
        self.run_dir, self.pending, self.ok = Path(run_dir), [], True

    @staticmethod
    def _param(key, value):
        from mlflow.entities import Param

        return Param(key, str(value)[:6000])

    def __call__(self, event: ev.Event) -> None:
        if not self.ok:
            return
        try:
            self._write(event)
        except Exception:  # e.g. the tracking server went away: the run itself goes on
            self.ok = False

    def _metric(self, key: str, value: float, step: int):
        from mlflow.entities import Metric

        self.pending.append(Metric(key, float(value), int(time.time() * 1000), step))

    def _flush(self) -> None:
        if self.pending:
            self.client.log_batch(self.run_id, metrics=self.pending)
            self.pending = []

    def _write(self, event: ev.Event) -> None:
        if isinstance(event, ev.Step):
            for key, value in (("train_loss", event.loss), ("learning_rate", event.learning_rate),
                               ("samples_per_s", event.samples_per_s)):
                self._metric(key, value, event.step)
            if event.step % FLUSH_EVERY == 0:
                self._flush()
        elif isinstance(event, ev.Evaluation):
            self._metric("val_loss", event.loss, event.step)
            for key, value in event.metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._metric(f"val_{key}" if not key.startswith("val_") else key, value, event.step)
            self._flush()
        elif isinstance(event, ev.TERMINAL):
            self._flush()
            if isinstance(event, (ev.Finished, ev.Cancelled)):
                for pattern in MODEL_FILES:
                    for path in sorted(self.run_dir.glob(pattern)):
                        self.client.log_artifact(self.run_id, str(path), "model")
            self.client.set_terminated(self.run_id, STATUS[type(event)])
