"""Model versions: the registry (names, versions, aliases, refusals), its CLI, and a hot swap under load: clients
keep predicting while the server promotes version 2, see no error, and switch from version 1 to version 2 once."""
from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from toy_data import toy_frames

from bench.browser_app import free_port
from core.cli import main as cli
from core.cli.versions import served_model
from core.common.errors import DataError, ModelError
from core.deploy.batching import MicroBatcher, ServeLimits
from core.deploy.serve import MonitorOptions, create_app
from core.deploy.versions import NamedModel, Registry
from core.runs.config import TrainConfig
from core.runs.run_folder import RunFolder
from core.runs.store import RunStore
from core.tasks import prepare_data
from core.train.engine import TrainingJob

CLIENTS = 6
SEEN = 3  # answers each client must see from each version


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory) -> dict[str, Path]:
    """Two one-epoch tiny classifiers of the toy table, a tiny regression run, a folder without a model and a run
    whose weights are damaged."""
    root = tmp_path_factory.mktemp("version-runs")
    store, found = RunStore(root), {}
    for key, task, seed in (("v1", "classification", 1), ("v2", "classification", 2), ("scores", "regression", 1)):
        config = TrainConfig(task=task, base_model=str(tiny_model_dir), epochs=1, batch_size=16, max_length=32,
                             learning_rate=1e-3, precision="fp32", seed=seed)
        job = TrainingJob(config, prepare_data(task, toy_frames()[task]), store, data_name=f"{key}")
        job.run()
        found[key] = job.run_dir
    found["empty"] = root / "no-model"
    found["empty"].mkdir()
    found["damaged"] = root / "damaged"
    shutil.copytree(found["v1"], found["damaged"])
    (found["damaged"] / "model.safetensors").write_bytes(b"not safetensors")
    return found


def test_registry_numbers_versions_moves_aliases_and_refuses_other_runs(runs, tmp_path):
    registry = Registry(tmp_path)
    assert registry.names() == [] and (tmp_path / "versions.db").is_file()
    with pytest.raises(DataError, match="no model called 'reviews'"):
        registry.versions("reviews")
    assert registry.add("reviews", runs["v1"]).label == "reviews:1"
    assert registry.add("reviews", runs["v1"]).version == 1  # already a version: not added twice
    assert registry.add("reviews", runs["v2"]).label == "reviews:2"
    with pytest.raises(DataError, match="regression on text, but this model is classification on text"):
        registry.add("reviews", runs["scores"])
    with pytest.raises(ModelError, match="has no saved model"):
        registry.add("reviews", runs["empty"])
    with pytest.raises(DataError, match="There is no run folder"):
        registry.add("reviews", tmp_path / "nowhere")
    with pytest.raises(DataError, match="not usable"):
        registry.add("re:views", runs["v1"])

    assert registry.get("reviews").version == 2  # no production yet: the newest
    registry.set_alias("reviews", "production", 1)
    registry.set_alias("reviews", "candidate", "2")
    assert registry.get("reviews").version == 1 and registry.get("reviews", "candidate").version == 2
    assert [v.aliases for v in registry.versions("reviews")] == [("production",), ("candidate",)]
    with pytest.raises(DataError, match="no version 7 .*1 to 2"):
        registry.get("reviews", 7)
    with pytest.raises(DataError, match="no alias 'staging' .*candidate, production"):
        registry.get("reviews", "staging")
    with pytest.raises(DataError, match="is a number"):
        registry.set_alias("reviews", "42", 1)

    other = Registry(database=f"sqlite:///{tmp_path / 'elsewhere.db'}")  # any SQLAlchemy URL
    assert other.add("scores", runs["scores"]).signature.task == "regression" and other.names() == ["scores"]


def test_versions_and_registry_promote_commands(runs, tmp_path, capsys):
    runs_dir = str(tmp_path / "runs")
    assert cli.main(["--runs", runs_dir, "versions", "--model", "reviews", "--add", str(runs["v1"])]) == 0
    assert cli.main(["--runs", runs_dir, "versions", "--model", "reviews", "--add", str(runs["v2"]),
                     "--alias", "candidate"]) == 0
    assert "added reviews:2" in capsys.readouterr().out
    assert cli.main(["--runs", runs_dir, "promote", "--model", "reviews", "--version", "1"]) == 0
    assert "reviews:production -> reviews:1" in capsys.readouterr().out
    assert cli.main(["--runs", runs_dir, "versions", "--model", "reviews", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(v["label"], v["aliases"]) for v in listed] == [("reviews:1", ["production"]), ("reviews:2", ["candidate"])]
    args = cli.build_parser().parse_args(["--runs", runs_dir, "serve", "--model", "reviews", "--alias", "candidate"])
    folder, named, label = served_model(args)
    assert (folder, named.name, label) == (runs["v2"], "reviews", "reviews:2")
    for argv, message in ((["versions", "--model", "nope"], "There is no model called 'nope'"),
                          (["versions", "--model", "reviews", "--add", str(runs["scores"])], "regression on text"),
                          (["promote", "--run", str(runs["v2"])], "Give --server URL"),
                          (["promote", "--version", "1", "--server", f"http://127.0.0.1:{free_port()}"],
                           "Could not reach the server"),
                          (["serve", "--port", "1"], "Give either --run RUN or --model NAME")):
        assert cli.main(["--runs", runs_dir, *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err


def test_closing_a_batcher_answers_what_it_queued_first():
    class Slow:
        def predict(self, rows):
            time.sleep(0.02)
            return list(rows["text"])

    async def scenario():
        batcher = MicroBatcher(Slow(), ServeLimits(max_batch=2))
        queued = [batcher.submit({"text": [f"t{n}"]}) for n in range(5)]
        await batcher.close()
        assert [f.result() for f in queued] == [[f"t{n}"] for n in range(5)] and batcher.worker.done()

    asyncio.run(scenario())


def test_a_server_of_a_run_folder_promotes_runs_and_refuses_versions(runs):
    with TestClient(create_app(runs["v1"], monitor_options=None)) as client:
        assert client.get("/healthz").json()["model"] == runs["v1"].name
        refused = client.post("/v1/promote", json={"version": 1})
        assert refused.status_code == 422 and "serves a run folder" in refused.json()["error"]
        assert client.post("/v1/promote", json={"run": str(runs["v2"])}).json()["model"] == runs["v2"].name
        answer = client.post("/v1/predict", json={"inputs": ["this is good number 3"]}).json()
        assert answer["model"] == runs["v2"].name and answer["predictions"][0]["label"] in {"pos", "neg"}


@pytest.fixture
def named_server(runs, tmp_path):
    """``reviews`` version 1 served by uvicorn on 127.0.0.1, with the monitor on."""
    import uvicorn

    registry = Registry(tmp_path)
    first = registry.set_alias("reviews", "production", registry.add("reviews", runs["v1"]).version)
    app = create_app(first.run, named=NamedModel(registry, "reviews"), label=first.label)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.config.port}"
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield url, registry
    server.should_exit = True
    thread.join(10)


def test_promotion_under_load_drops_nothing_and_switches_each_client_once(runs, named_server, capsys):
    url, registry = named_server
    seen: list[list[str]] = [[] for _ in range(CLIENTS)]
    errors: list[str] = []
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while not stop.is_set() and len(seen[n]) < 2000:
                try:
                    answer = http.post("/v1/predict", json={"inputs": [f"this is good number {n}"]})
                    assert answer.status_code == 200, answer.text
                    seen[n].append(answer.json()["model"])
                except Exception as exc:  # counted, then asserted to be zero
                    errors.append(repr(exc))

    def wait_until(condition, seconds: float = 30) -> None:
        deadline = time.time() + seconds
        while not condition() and time.time() < deadline and not errors:
            time.sleep(0.02)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: all(s.count("reviews:1") >= SEEN for s in seen))
        promoted = httpx.post(f"{url}/v1/promote", json={"run": str(runs["v2"])}, timeout=120)
        wait_until(lambda: all(s.count("reviews:2") >= SEEN for s in seen))
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    first, second = sum(s.count("reviews:1") for s in seen), sum(s.count("reviews:2") for s in seen)
    with capsys.disabled():
        print(f"\npromotion under load: {CLIENTS} clients, {first} answers from reviews:1, {second} from reviews:2, "
              f"{len(errors)} errors")
    assert not errors, errors[:3]
    assert promoted.json() == {"model": "reviews:2", "previous": "reviews:1"}
    for answers in seen:  # version 1 until the switch, then only version 2
        switch = answers.index("reviews:2")
        assert switch >= SEEN and set(answers[:switch]) == {"reviews:1"} and set(answers[switch:]) == {"reviews:2"}
    assert registry.get("reviews").label == "reviews:2"  # production moved
    assert httpx.get(f"{url}/healthz").json()["model"] == "reviews:2"

    for body, message in (({"run": str(runs["scores"])}, "regression on text"),
                          ({"run": str(runs["empty"])}, "has no saved model"),
                          ({"run": str(runs["damaged"])}, "could not be loaded"),
                          ({"version": 9}, "no version 9"), ({}, "Send")):
        refused = httpx.post(f"{url}/v1/promote", json=body, timeout=60)
        assert refused.status_code == 422 and message in refused.json()["error"], refused.text
    assert httpx.post(f"{url}/v1/predict", json={"inputs": ["this is bad"]}).json()["model"] == "reviews:2"

    rolled_back = httpx.post(f"{url}/v1/promote", json={"version": 1}, timeout=60).json()
    assert rolled_back == {"model": "reviews:1", "previous": "reviews:2"} and registry.get("reviews").version == 1
    assert httpx.post(f"{url}/v1/predict", json={"inputs": ["this is bad"]}).json()["model"] == "reviews:1"

    assert cli.main(["promote", "--model", "reviews", "--version", "2", "--server", url]) == 0
    assert "serves reviews:2 (was reviews:1)" in capsys.readouterr().out
    assert cli.main(["promote", "--model", "other", "--version", "1", "--server", url]) == 2
    assert "serves 'reviews:2', not the model 'other'" in capsys.readouterr().err


def test_feedback_on_a_prediction_made_before_a_promotion_reaches_its_own_models_log(runs):
    def truths(run) -> dict:
        deadline = time.time() + 10  # the request log writes every half second
        while time.time() < deadline:
            with sqlite3.connect(run / RunFolder.MONITOR_DB) as db:
                found = dict(db.execute("SELECT id, truth FROM feedback"))
            if found:
                return found
            time.sleep(0.1)
        return {}

    app = create_app(runs["v1"], monitor_options=MonitorOptions(log_inputs=True, run_dir=runs["v1"]))
    with TestClient(app) as client:
        before = client.post("/v1/predict", json={"inputs": ["this is good number 1"]}).json()["predictions"][0]["id"]
        app.state.monitor.log.flush()
        assert client.post("/v1/promote", json={"run": str(runs["v2"])}).status_code == 200
        after = client.post("/v1/predict", json={"inputs": ["this is bad"]}).json()["predictions"][0]["id"]
        app.state.monitor.log.flush()
        for prediction_id, label in ((before, "pos"), (after, "neg")):
            assert client.post("/v1/feedback", json={"id": prediction_id, "label": label}).status_code == 202
        assert truths(runs["v1"]) == {before: '"pos"'} and truths(runs["v2"]) == {after: '"neg"'}
