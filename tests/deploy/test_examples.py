"""The Predict tab's examples come from the run's own validation rows: one or two per class, both texts of pairs,
sentences for NER (Chinese characters joined without spaces)."""
from __future__ import annotations

import json

import pandas as pd

from core.data.dedup import deduplicate
from core.deploy.examples import as_text, example_inputs
from core.runs.config import TrainConfig
from core.runs.run_folder import RunFolder
from core.tasks import get_task, prepare_data


def run_folder(tmp_path, task: str, frame: pd.DataFrame) -> RunFolder:
    """A run folder as the engine writes it before training: its settings and cleaned rows."""
    tmp_path.mkdir(exist_ok=True)
    folder = RunFolder(tmp_path)
    folder.write_config(TrainConfig(task=task))
    data = prepare_data(task, frame)
    folder.write_data({"name": "t", "task": task, "columns": data.columns}, get_task(task).to_frame(data))
    return folder


def test_class_runs_offer_validation_rows_of_each_class(tmp_path):
    frame = pd.DataFrame({"text": [f"{kind} text number {i}" for kind in ("sport", "money", "tech") for i in range(20)],
                          "label": [kind for kind in ("sport", "money", "tech") for _ in range(20)]})
    folder = run_folder(tmp_path, "classification", frame)
    examples = example_inputs(folder.path)
    task, config = get_task("classification"), TrainConfig()
    _, val = task.split(deduplicate(prepare_data("classification", frame))[0], config.val_fraction, config.seed)
    assert examples and all(row[0] in val.inputs["text"] for row in examples)  # validation rows only
    counts = pd.Series([row[0].split()[0] for row in examples]).value_counts()
    assert set(counts.index) == {"sport", "money", "tech"} and counts.max() == 2


def test_pair_and_chinese_ner_runs_offer_what_their_boxes_take(tmp_path):
    pairs = pd.DataFrame({"sentence1": [f"A man plays guitar {i}." for i in range(30)],
                          "sentence2": [f"Someone makes music {i}." for i in range(30)],
                          "label": ["same", "different"] * 15})
    rows = example_inputs(run_folder(tmp_path / "pairs", "pairs", pairs).path)
    assert rows and all(len(row) == 2 and row[0].startswith("A man") and row[1].startswith("Someone") for row in rows)
    ner = pd.DataFrame({"tokens": [json.dumps(list("张三在北京工作") + [str(i)]) for i in range(20)],
                        "tags": [json.dumps(["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "O", "O"])] * 20})
    rows = example_inputs(run_folder(tmp_path / "ner", "token_classification", ner).path)
    assert rows and rows[0][0].startswith("张三在北京工作")
    assert as_text(["EU", "rejects", "German", "call"]) == "EU rejects German call"


def test_a_folder_without_its_rows_has_no_examples(tmp_path):
    RunFolder(tmp_path).write_config(TrainConfig())
    assert example_inputs(tmp_path) == []
