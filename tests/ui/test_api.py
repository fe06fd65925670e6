"""Drive the running app headless with gradio_client: train and predict endpoints, queueing, bad input."""
from __future__ import annotations

import json
import threading

import pytest


@pytest.fixture(scope="module")
def client(app):
    from gradio_client import Client

    return Client(app.url, verbose=False)


def tiny_config(model_dir, **extra) -> str:
    return json.dumps({"base_model": str(model_dir), "epochs": 2, "batch_size": 8, "max_length": 32,
                       "learning_rate": 1e-3, "precision": "fp32", **extra})


def test_train_then_predict_endpoints(client, tiny_model_dir, toy_csv):
    from gradio_client import handle_file

    result = client.predict(handle_file(str(toy_csv)), "", "", tiny_config(tiny_model_dir), api_name="/train")
    assert result["status"] == "finished", result
    assert 0 <= result["metrics"]["accuracy"] <= 1
    label, message, _ = client.predict("this product is great and I love it", result["run_id"], api_name="/predict")
    assert label["label"] in {"pos", "neg"}
    assert {c["label"] for c in label["confidences"]} == {"pos", "neg"}
    assert message == ""


def test_pair_task_through_train_with_column_roles(client, tiny_model_dir, tmp_path):
    from gradio_client import handle_file
    from toy_data import toy_frames

    path = tmp_path / "pairs.csv"
    toy_frames()["pairs"].rename(columns={"sentence1": "left", "sentence2": "right"}).assign(
        note="x").to_csv(path, index=False)
    config = tiny_config(tiny_model_dir, task="pairs", columns={"text_a": "left", "text_b": "right"})
    result = client.predict(handle_file(str(path)), "", "label", config, api_name="/train")
    assert result["status"] == "finished" and result["metrics"]["task"] == "pairs", result
    label, message, _ = client.predict("good thing", result["run_id"], None, "good thing", api_name="/predict_pair")
    assert label["label"] in {"same", "different"} and message == ""
    _, message, _ = client.predict("good thing", result["run_id"], api_name="/predict")
    assert "second text" in message
    with pytest.raises(Exception, match="no column role"):
        client.predict(handle_file(str(path)), "", "", tiny_config(tiny_model_dir, task="pairs",
                                                                    columns={"question": "left"}), api_name="/train")


def test_two_clients_training_at_once_are_queued(app, tiny_model_dir, toy_csv):
    from gradio_client import Client, handle_file

    results, errors = [], []

    def train(seed):
        try:
            c = Client(app.url, verbose=False)
            results.append(c.predict(handle_file(str(toy_csv)), "", "", tiny_config(tiny_model_dir, seed=seed, epochs=3),
                                     api_name="/train"))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=train, args=(seed,)) for seed in (1, 2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not errors, errors
    assert sorted(r["status"] for r in results) == ["finished", "finished"]
    assert len({r["run_id"] for r in results}) == 2
    spans = []
    for r in results:
        events = [json.loads(x) for x in (app.runs / r["run_id"] / "history.jsonl").read_text().splitlines()]
        spans.append((events[0]["time"], events[-1]["time"]))
    first, second = sorted(spans)
    assert first[1] <= second[0], "the two jobs trained at the same time"


def test_bad_upload_gives_a_clear_error(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(AppError, match="empty"):
        client.predict(handle_file(str(empty)), "", "", "{}", api_name="/train")
    with pytest.raises(AppError, match="batch size"):
        client.predict(handle_file(str(empty)), "", "", json.dumps({"batch_size": 0}), api_name="/train")


def test_tune_endpoint_searches_and_returns_the_best(client, tiny_model_dir, toy_csv):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    wanted = json.dumps({"search": {"learning_rate": [1e-4, 3e-2], "epochs": [1, 2]}, "trials": 3, "seed": 3})
    result = client.predict(handle_file(str(toy_csv)), "", "", tiny_config(tiny_model_dir), wanted, api_name="/tune")
    assert len(result["trials"]) == 3 and result["metric"] == "macro_f1"
    complete = [t for t in result["trials"] if t["state"] == "complete"]
    assert result["best"]["value"] == max(t["value"] for t in complete)
    assert all(t["run_id"] for t in result["trials"])
    with pytest.raises(AppError, match="above the high"):
        client.predict(handle_file(str(toy_csv)), "", "", tiny_config(tiny_model_dir),
                       json.dumps({"search": {"learning_rate": [1e-2, 1e-4]}}), api_name="/tune")
