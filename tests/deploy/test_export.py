"""Deployment: ONNX (fp32, int8) exports loaded with plain onnxruntime, and the HTTP prediction server."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pandas as pd
import pytest
from toy_data import toy_frames
from transformers import AutoTokenizer

from bench.browser_app import free_port
from core.common.errors import DataError
from core.deploy.export import check_export, export_run
from core.deploy.predict import Predictor
from core.deploy.serve import ServeLimits, create_app
from core.runs.config import TrainConfig
from core.runs.store import RunStore
from core.tasks import get_task, prepare_data
from core.train.engine import TrainingJob

ENCODER_TASKS = list(toy_frames())


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory) -> dict:
    """One short tiny-model run per encoder task."""
    store, out = RunStore(tmp_path_factory.mktemp("export-runs")), {}
    for task, frame in toy_frames().items():
        config = TrainConfig(task=task, base_model=str(tiny_model_dir), epochs=1, batch_size=8, max_length=32,
                             learning_rate=1e-3, precision="fp32")
        job = TrainingJob(config, prepare_data(task, frame), store, data_name=task)
        job.run()
        out[task] = job.run_dir
    return out


def sample_rows(task: str, predictor: Predictor) -> dict[str, list[str]]:
    frame, data = toy_frames()[task], prepare_data(task, toy_frames()[task])
    if task == "token_classification":
        return {"text": ["John met Mary in Paris", "Mary left Paris", "John"]}
    return {role: frame[data.columns[role]].head(3).tolist() for role in predictor.inputs}


def same(a: dict, b: dict) -> bool:
    """Prediction columns equal, numbers within 1e-3 (ONNX and torch differ in the last float bits)."""
    return a.keys() == b.keys() and all(
        a[k] == pytest.approx(b[k], abs=1e-3) if isinstance(a[k], float) else a[k] == b[k] for k in a)


@pytest.mark.parametrize("task", ENCODER_TASKS)
def test_onnx_export_loads_in_plain_onnxruntime_and_gives_the_apps_answers(task, runs, tmp_path):
    import onnxruntime

    exported = export_run(runs[task], tmp_path / "onnx", "onnx")
    assert (exported / "model.onnx").is_file() and "## Load it" in (exported / "README.md").read_text()
    app, from_export = Predictor(runs[task]), Predictor(exported)
    rows = sample_rows(task, app)
    expected = [app.task.output.columns(p) for p in app.predict(rows)]
    assert all(same(a, app.task.output.columns(b)) for a, b in zip(expected, from_export.predict(rows), strict=True))
    spec = get_task(task)  # the export alone, read as its model card says
    features = spec.encode_inputs(AutoTokenizer.from_pretrained(exported), rows, 32)
    session = onnxruntime.InferenceSession(str(exported / "model.onnx"))
    ids = np.array(features["input_ids"][:1], dtype=np.int64)
    filler = {"attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    feed = {i.name: np.array(features[i.name][:1], dtype=np.int64) if i.name in features else filler[i.name]
            for i in session.get_inputs()}
    logits = session.run(["logits"], feed)[0][0]
    again = spec.format([logits], {k: v[:1] for k, v in features.items()}, from_export.model.config)[0]
    assert same(spec.output.columns(again), expected[0])


def test_int8_export_is_a_quarter_of_the_size_and_agrees(runs, tmp_path):
    fp32 = export_run(runs["classification"], tmp_path / "fp32", "onnx")
    int8 = export_run(runs["classification"], tmp_path / "int8", "onnx-int8")
    assert (int8 / "model.onnx").stat().st_size < 0.35 * (fp32 / "model.onnx").stat().st_size
    texts = [f"this is {w} number {i}" for i in range(20) for w in ("good", "bad")]
    a = Predictor(fp32).predict(texts)
    b = Predictor(int8).predict(texts)
    assert np.mean([x.label == y.label for x, y in zip(a, b)]) >= 0.9
    assert max(abs(x.confidence - y.confidence) for x, y in zip(a, b)) < 0.05


@pytest.mark.parametrize("task", ["classification", "regression", "multi_label"])
def test_an_export_is_scored_on_the_runs_validation_rows(task, runs, tmp_path, monkeypatch):
    """The Evaluate tab's export check: the run re-scored through Predictor matches its own evaluation, and the
    int8 export's cost is measured on the same rows."""
    monkeypatch.setenv("SFT_STUDIO_CACHE", str(tmp_path))
    key = get_task(task).primary_metric
    check = check_export(runs[task], "onnx-int8")
    assert check.rows == len(pd.read_csv(runs[task] / "validation_predictions.csv"))
    assert check.run_metrics[key] == pytest.approx(json.loads((runs[task] / "metrics.json").read_text())[key], abs=1e-3)
    assert abs(check.metrics[key] - check.run_metrics[key]) < 0.15 and check.size_mb < check.run_size_mb
    assert check_export(runs[task], "onnx-int8").size_mb == check.size_mb  # the cached export is reused
    with pytest.raises(DataError, match="not Entities"):
        check_export(runs["token_classification"], "onnx")


def test_export_refuses_a_used_folder_and_an_unknown_format(runs, tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        export_run(runs["classification"], tmp_path / "used", "onnx")
    with pytest.raises(DataError, match="for assistant runs"):
        export_run(runs["classification"], tmp_path / "new", "gguf-q8_0")
    with pytest.raises(DataError, match="Unknown export format"):
        export_run(runs["classification"], tmp_path / "new", "tflite")
    assert (tmp_path / "used" / "file.txt").read_text() == "mine" and not (tmp_path / "new").exists()


@pytest.fixture(scope="module")
def server(runs):
    """The classification run served by uvicorn on 127.0.0.1 with a token and small limits."""
    import uvicorn

    app = create_app(runs["classification"], token="s3cret", limits=ServeLimits(max_inputs=8, max_chars=500))
    port = free_port()
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    yield url
    instance.should_exit = True
    thread.join(10)


AUTH = {"Authorization": "Bearer s3cret"}


def test_server_predicts_like_the_app_under_concurrent_requests(server, runs):
    health = httpx.get(f"{server}/healthz").json()
    assert health["status"] == "ok" and health["task"] == "classification" and set(health["labels"]) == {"neg", "pos"}
    texts = [f"this is {w} number {i}" for i in range(25) for w in ("good", "bad")]
    expected = [p.label for p in Predictor(runs["classification"]).predict(texts)]

    def ask(text: str) -> httpx.Response:
        return httpx.post(f"{server}/v1/predict", json={"inputs": [text]}, headers=AUTH, timeout=30)

    with ThreadPoolExecutor(25) as pool:  # concurrent requests share model calls (micro-batching)
        answers = list(pool.map(ask, texts))
    assert all(a.status_code == 200 for a in answers)
    assert [a.json()["predictions"][0]["label"] for a in answers] == expected
    batch = httpx.post(f"{server}/v1/predict", json={"inputs": texts[:8]}, headers=AUTH).json()["predictions"]
    assert [p["label"] for p in batch] == expected[:8] and set(batch[0]["probabilities"]) == {"neg", "pos"}
    assert "/v1/predict" in httpx.get(f"{server}/openapi.json").json()["paths"]


@pytest.mark.parametrize("body, headers, status, message", [
    ({"inputs": ["fine"]}, {}, 401, "Bearer"),
    ({"inputs": ["fine"]}, {"Authorization": "Bearer wrong"}, 401, "Bearer"),
    ({"inputs": []}, AUTH, 422, "at least one"),
    ({"inputs": 5}, AUTH, 422, "inputs"),
    ({"texts": ["fine"]}, AUTH, 422, "inputs"),
    ("not json", AUTH, 422, "JSON"),
    ({"inputs": ["x"] * 9}, AUTH, 413, "At most 8"),
    ({"inputs": ["x" * 501]}, AUTH, 413, "longer than 500"),
    ({"inputs": [{"text_b": "no text"}]}, AUTH, 422, "lacks text"),
])
def test_server_answers_bad_requests_with_a_4xx_and_a_message(server, body, headers, status, message):
    kwargs = {"content": body, "headers": {**headers, "content-type": "application/json"}} if isinstance(body, str) \
        else {"json": body, "headers": headers}
    answer = httpx.post(f"{server}/v1/predict", timeout=30, **kwargs)
    assert answer.status_code == status and message in answer.json()["error"], answer.text
