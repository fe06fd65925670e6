"""Explanations: integrated gradients put the weight on the word that decides the class, deleting the top words
moves the prediction more than deleting others, and the server explains what it predicts."""
from __future__ import annotations

import json

import pytest
from toy_data import toy_frames

from core.common.errors import DataError


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory, tiny_model_dir):
    """The toy sentiment table ("this is good/bad number N"): the class is decided by one word."""
    from core.runs.store import RunStore
    from core.train import service

    plan = service.plan_run(toy_frames()["classification"], {"base_model": str(tiny_model_dir), "epochs": 12,
                                                             "max_length": 32, "precision": "fp32",
                                                             "learning_rate": 3e-3, "freeze_embeddings": False})
    job, outcome = service.train(plan, RunStore(tmp_path_factory.mktemp("explain-runs")))
    assert outcome.metrics["accuracy"] == 1.0
    return job.run_dir


def test_the_deciding_word_carries_the_weight_and_deleting_it_matters_most(toy_run):
    from core.deploy.explain import explain
    from core.deploy.predict import Predictor

    predictor = Predictor(toy_run)
    texts = ["this is good number 7", "this is bad number 12", "this is bad number 40"]
    found = explain(predictor, texts)
    assert [e.label for e in found] == [p.label for p in predictor.predict(texts)] == ["pos", "neg", "neg"]
    for text, explanation in zip(texts, found):
        words = [w for w, _ in explanation.words]
        assert words == text.split() and max(abs(v) for _, v in explanation.words) == pytest.approx(1.0)
        assert words[explanation.top(1)[0]] in ("good", "bad"), explanation.words
    for text, explanation in zip(texts, found):  # faithfulness: deleting the top word moves the prediction most
        words = [w for w, _ in explanation.words]
        top = explanation.top(1)[0]
        def confidence(drop: int) -> float:
            kept = " ".join(w for i, w in enumerate(words) if i != drop)
            return predictor.predict([kept])[0].probabilities[explanation.label]
        others = [confidence(i) for i in range(len(words)) if i != top]
        assert confidence(top) < min(others)


def test_server_explains_text_classifiers_and_refuses_other_tasks(toy_run, tmp_path, tiny_model_dir):
    from fastapi.testclient import TestClient

    from core.deploy.serve import create_app

    client = TestClient(create_app(toy_run, monitor_options=None))
    answer = client.post("/v1/explain", json={"inputs": ["this is good number 3"]})
    assert answer.status_code == 200, answer.text
    explained = answer.json()["explanations"][0]
    assert explained["label"] == "pos" and [w["text"] for w in explained["words"]][2] == "good"
    assert max(explained["words"], key=lambda w: w["weight"])["text"] == "good"
    assert client.post("/v1/explain", json={"inputs": []}).status_code == 422
    assert client.post("/v1/explain", json={"inputs": ["x"] * 17}).status_code == 413
    assert client.post("/v1/explain", json={"inputs": [{"text": 3}]}).status_code == 422


def test_tasks_without_one_class_per_text_are_refused(tmp_path, tiny_model_dir):
    from core.deploy.explain import explain
    from core.deploy.predict import Predictor
    from core.runs.store import RunStore
    from core.train import service

    plan = service.plan_run(toy_frames()["regression"], {"base_model": str(tiny_model_dir), "epochs": 1,
                                                         "max_length": 32, "precision": "fp32", "task": "regression"})
    job, _ = service.train(plan, RunStore(tmp_path))
    with pytest.raises(DataError, match="one text in and one class out"):
        explain(Predictor(job.run_dir), ["good good item 1"])
    assert json.loads((job.run_dir / "metrics.json").read_text())["task"] == "regression"
