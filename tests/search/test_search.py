"""Hyperparameter search on Optuna: reproducible with a seed, workers share a study, a dead worker's trial fails."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from core.common.errors import ConfigError
from core.runs.store import RunStore
from core.search import space as search_space
from core.search import study as search

ROOT = Path(__file__).resolve().parents[2]


def tiny_settings(model_dir) -> dict:
    return {"base_model": str(model_dir), "batch_size": 8, "max_length": 32, "precision": "fp32",
            "early_stopping_patience": 0}


def test_bad_search_settings_get_a_message():
    with pytest.raises(ConfigError, match="at least one setting"):
        search_space.SearchSettings(space={}).checked()
    with pytest.raises(ConfigError, match="above the high"):
        search_space.SearchSettings(space={"learning_rate": (1e-3, 1e-5)}).checked()
    with pytest.raises(ConfigError, match="cannot be searched"):
        search_space.SearchSettings(space={"colour": ()}).checked()
    with pytest.raises(ConfigError, match="warmup ratio must be between 0 and 0.5"):  # its declared bounds
        search_space.SearchSettings(space={"warmup_ratio": (0.0, 0.9)}).checked()
    with pytest.raises(ConfigError, match="at least one trial"):
        search_space.SearchSettings(trials=0).checked()
    assert search_space.parse_space("lr,epochs", ["epochs=1:3", "batch_size=8|16"]) == {
        "learning_rate": (), "epochs": ("1", "3"), "batch_size": ("8", "16")}
    assert search_space.SearchSettings(space=search_space.parse_space("epochs,batch_size", ["epochs=1:3", "batch_size=8|16"])
                                 ).checked().space == {"epochs": (1, 3), "batch_size": (8, 16)}


def test_budget_below_one_trial_is_refused(tiny_model_dir, toy_csv, tmp_path):
    with pytest.raises(ConfigError, match="cannot hold one trial"):
        search.create_study(toy_csv, tiny_settings(tiny_model_dir), {}, search_space.SearchSettings(timeout_s=1),
                            tmp_path / "runs")


def run_search(model_dir, data, runs: Path, name: str) -> list[search.TrialResult]:
    settings = search_space.SearchSettings(space={"learning_rate": (1e-4, 3e-2), "epochs": (1, 3)}, trials=3, seed=7,
                                     study=name)
    record, study = search.create_study(data, tiny_settings(model_dir), {}, settings, runs)
    search.optimize(record, study, RunStore(runs))
    return search.results(study)


def test_search_is_reproducible_with_a_seed_and_one_worker(tiny_model_dir, toy_csv, tmp_path):
    first = run_search(tiny_model_dir, toy_csv, tmp_path / "a", "first")
    again = run_search(tiny_model_dir, toy_csv, tmp_path / "b", "again")
    assert [(r.params, r.value, r.state) for r in first] == [(r.params, r.value, r.state) for r in again]
    assert len({json.dumps(r.params, sort_keys=True) for r in first}) == 3  # three different settings tried
    runs = RunStore(tmp_path / "a").list()
    assert sorted(r.trial for r in runs) == [0, 1, 2] and {r.study for r in runs} == {"first"}


def start_worker(args: list[str], cwd: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "core", "--runs", "runs", "tune", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def running_trial_of(runs: Path, pid: int) -> int | None:
    for status in runs.glob("*/status.json"):
        fields = json.loads(status.read_text())
        if fields.get("pid") == pid and fields.get("status") == "running" and "trial" in fields:
            return fields["trial"]
    return None


@pytest.mark.slow
def test_two_workers_share_a_study_and_a_killed_worker_leaves_its_trial_failed(tiny_model_dir, toy_csv, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SFT_STUDIO_SEARCH_HEARTBEAT_S": "1",
           "SFT_STUDIO_SEARCH_GRACE_S": "4"}
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in tiny_settings(tiny_model_dir).items()]
    first = start_worker(["--data", str(toy_csv), "--study", "shared", "--trials", "10", "--search", "lr,epochs",
                          "--range", "epochs=4:8", *flags], tmp_path, env)
    storage = f"sqlite:///{tmp_path / 'runs' / 'search.db'}"
    deadline = time.time() + 120
    while time.time() < deadline:  # the second worker joins once the study exists
        try:
            optuna.load_study(study_name="shared", storage=storage)
            break
        except (KeyError, Exception):
            time.sleep(0.5)
    second = start_worker(["--worker", "--study", "shared"], tmp_path, env)
    killed, deadline = None, time.time() + 300
    while killed is None and time.time() < deadline and second.poll() is None:
        killed = running_trial_of(tmp_path / "runs", second.pid)
        time.sleep(0.2)
    assert killed is not None, f"the second worker never started a trial: {second.communicate()[0]}"
    second.send_signal(signal.SIGKILL)
    second.wait()
    output, _ = first.communicate(timeout=600)
    assert first.returncode == 0, output

    study = optuna.load_study(study_name="shared", storage=storage)
    states = {t.number: t.state for t in study.get_trials()}
    assert states[killed] == optuna.trial.TrialState.FAIL, (states, output)
    finished = [n for n, s in states.items() if s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert len(finished) >= 10, (states, output)
    runs = RunStore(tmp_path / "runs").list()
    assert len({r.trial for r in runs}) == len(runs)  # one run folder per trial: no trial trained twice
    assert {r.trial for r in runs} == set(states)
    assert "best: trial" in output
