"""Every run writes its curves as TensorBoard event files that TensorBoard's own reader reads back."""
from __future__ import annotations

import pandas as pd
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from core import events as ev
from core.config import TrainConfig
from core.engine import TrainingJob
from core.run_folder import RunFolder
from core.store import RunStore
from core.tasks import prepare_data


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
