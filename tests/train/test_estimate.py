"""The time estimate shown before Start: a short real run measures the machine once; runs are then estimated
from their schedule and token counts (the browser tests compare estimates with real runs of the real models)."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest

from core.runs.store import RunStore
from core.train import service
from core.train.estimate import SPEED_FILE, SpeedBook, duration, estimate


@pytest.fixture
def plan(toy_csv, tiny_model_dir):
    return service.plan_run(toy_csv, {"base_model": str(tiny_model_dir), "epochs": 4.0, "batch_size": 8,
                                      "early_stopping_patience": 0})


def test_measured_once_remembered_and_close_to_a_real_run(plan, tmp_path):
    book = SpeedBook(tmp_path / "runs")
    assert book.get(plan.config) is None
    speed = book.measure(plan.config, plan.data)
    assert (tmp_path / "runs" / SPEED_FILE).exists()
    assert SpeedBook(tmp_path / "runs").get(plan.config) == speed  # a new page (or app) reads it back
    assert SpeedBook(tmp_path / "runs").get(replace(plan.config, lora=True)) is None  # another mode: measured anew
    assert speed.train_s_per_token > 0 and speed.total_params >= speed.trainable_params > 0

    said = estimate(plan.config, plan.data, speed)
    longer = estimate(replace(plan.config, epochs=12.0), plan.data, speed)
    assert longer.seconds > 1.8 * (said.seconds - speed.load_s)  # three times the steps
    assert "on this machine" in said.describe() and "GB of memory" in said.describe()

    job = service.make_job(plan, RunStore(tmp_path / "real"))
    book.follow(job, plan.config, plan.data)  # a finished run teaches the book how real runs compare here
    assert book.correction(plan.config) == 1.0
    final = service.train_job(job)
    took = final.time - job.events.since(0)[0].time
    print(f"\ntiny BERT, {len(plan.data)} rows: estimated {said.seconds:.1f} s, took {took:.1f} s")
    assert type(final).__name__ == "Finished"
    assert 0.33 * took <= said.seconds <= 3 * took  # seconds-long runs: the browser tests hold real ones to +-50%
    assert book.correction(plan.config) == pytest.approx(min(3, max(1 / 3, took / said.seconds)), rel=1e-6)
    assert book.correction(replace(plan.config, lora=True)) == 1.0  # runs of another kind teach nothing
    assert estimate(plan.config, plan.data, speed, book.correction(plan.config)).seconds == pytest.approx(
        said.seconds * book.correction(plan.config))


def test_a_real_run_stops_the_measurement_without_calling_it_a_failure(plan, tmp_path):
    book = SpeedBook(tmp_path / "runs")
    slow = replace(plan.config, batch_size=4)
    book.measure_later(slow, plan.data)
    deadline = time.time() + 60
    while not book._jobs and book.measuring(slow) and time.time() < deadline:
        time.sleep(0.05)
    book.stop()
    while book.measuring(slow) and time.time() < deadline:
        time.sleep(0.1)
    assert not book.measuring(slow)
    assert book.failure(slow) is None  # asked again later, measured then


def test_only_the_settings_on_the_page_are_measured(plan, tmp_path):
    book = SpeedBook(tmp_path / "runs")
    first, second = replace(plan.config, batch_size=4), replace(plan.config, batch_size=4, lora=True)
    book.measure_later(first, plan.data)
    book.measure_later(second, plan.data)  # the person changed a setting before the first settled
    deadline = time.time() + 120
    while (book.measuring(first) or book.measuring(second)) and time.time() < deadline:
        time.sleep(0.1)
    assert book.get(first) is None and book.get(second) is not None


def test_durations_read_plainly():
    assert duration(42) == "40 s"
    assert duration(7 * 60 + 10) == "7 min"
    assert duration(80 * 60) == "1 h 20 min"


def test_the_short_test_yields_to_a_person_waiting_for_an_answer(plan, tmp_path):
    """A chat answer, a prediction or an evaluation stops the short speed test at once; it measures again only
    once nobody waits (two trainings at once would slow the person's answer and mistime the machine)."""
    from core.common.foreground import person_waiting

    book = SpeedBook(tmp_path / "runs")
    config = replace(plan.config, batch_size=4)
    book.measure_later(config, plan.data)
    deadline = time.time() + 120
    while not book._jobs and time.time() < deadline:
        time.sleep(0.05)
    assert book._jobs, "the short test never started"
    with person_waiting():
        while book.measuring(config) and time.time() < deadline:
            time.sleep(0.1)
        assert not book.measuring(config) and book.failure(config) is None and book.get(config) is None
        book.measure_later(config, plan.data)  # the page's timer asks again while the person still waits
        time.sleep(3)
        assert not book._jobs  # waits, does not train
    while book.measuring(config) and time.time() < deadline:
        time.sleep(0.1)
    assert book.get(config) is not None  # measured once nobody waited
