"""The classical baseline of every task, the schedule derived from a table's size, and the verdict."""
from __future__ import annotations

import pytest

from core.data.dedup import deduplicate
from core.data.samples import SAMPLES, build_sample
from core.insight.verdict import judge
from core.runs.config import PRESETS, TrainConfig
from core.tasks import get_task, prepare_data
from core.tasks.classical import fit_classical
from core.tasks.types import TaskData
from core.train.schedule import MAX_AUTO_EPOCHS, MIN_AUTO_EPOCHS, plan_schedule

# (sample, rows): one real sample per task family, a few hundred rows so the suite stays quick.
SAMPLE_ROWS = [("tweet_sentiment", 100), ("sentiment_scores", 500), ("sts_b", 500), ("sts_b_paraphrase", 500),
               ("movie_genres", 600), ("conll2003", 400), ("msra_ner", 300)]


def split_sample(name: str, rows: int):
    task = get_task(SAMPLES[name].task)
    data, _ = deduplicate(prepare_data(task.name, build_sample(name, rows)))
    train, val = task.split(data, 0.2, 42)
    return task, train, val, task.fit(train)


@pytest.mark.parametrize("name,rows", SAMPLE_ROWS)
def test_the_classical_baseline_beats_the_trivial_one_on_held_out_rows(name, rows, sample_cache):
    task, train, val, state = split_sample(name, rows)
    classical = fit_classical(task, train, val, state, seed=42)
    trivial = task.baseline(train, val, state)
    key = task.primary_metric
    print(f"\n{name}: {classical['name']} {key} {classical[key]:.4f} vs {trivial['name']} {trivial[key]:.4f} "
          f"in {classical['seconds']:.1f} s")
    assert classical["seconds"] < 30
    gain = classical[key] - trivial[key] if task.greater_is_better else trivial[key] - classical[key]
    assert gain > 0.05
    assert set(dict(task.view.cards)) <= set(classical) | {"macro_f1"}  # every card the UI shows has a value


def test_a_baseline_that_cannot_be_fitted_is_skipped_with_a_note():
    task = get_task("classification")
    blank = TaskData({"text": ["", " ", "", " "]}, [0, 1, 0, 1], {"text": "t", "label": "l"}, ["a", "b"])
    result = fit_classical(task, blank, blank, {}, seed=0)
    assert result["name"] == task.classical_name and "could not be fitted" in result["skipped"]
    assert judge(task, {"macro_f1": 0.5, "classical": result}).beats is None


def test_the_assistant_has_no_classical_baseline():
    assert fit_classical(get_task("assistant"), None, None, {}, seed=0) is None


def test_the_verdict_says_when_the_classical_model_wins_and_what_to_try():
    task = get_task("regression")  # lower is better
    classical = {"name": "TF-IDF + ridge regression", "rmse": 1.2, "seconds": 0.8}
    assert judge(task, {"rmse": 1.0, "classical": classical}).beats is True
    lost = judge(task, {"rmse": 1.5, "classical": classical})
    assert lost.beats is False and "1.2000 vs this fine-tune's 1.5000" in lost.text and "epochs" in lost.text


def test_small_tables_get_enough_optimizer_steps_and_large_ones_keep_three_epochs():
    config = TrainConfig()  # epochs 0: derived
    small = plan_schedule(config, 400)  # 25 steps an epoch
    assert small.derived and small.epochs == 12 and small.total_steps == 300 and small.eval_every == 25
    tiny = plan_schedule(config, 40)
    assert tiny.epochs == MAX_AUTO_EPOCHS and tiny.total_steps == 60
    large = plan_schedule(config, 50_000)
    assert large.epochs == MIN_AUTO_EPOCHS and large.total_steps == 3 * 3125
    explicit = plan_schedule(TrainConfig(epochs=1.5), 400)
    assert not explicit.derived and explicit.total_steps == 38
    assert plan_schedule(TrainConfig(max_steps=7), 400).total_steps == 7
    assert plan_schedule(TrainConfig(**PRESETS["Accurate"]), 400).total_steps == MAX_AUTO_EPOCHS * 25  # 600 capped
    assert plan_schedule(TrainConfig(**PRESETS["Fast"]), 400).total_steps == 25
