"""Slices: the table's unused columns are kept with a run, aligned with its rows; the validation rows are grouped by
one of them (numbers in quarters) with the metric per group, worst first; identifiers are refused by name."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.common.errors import DataError


@pytest.fixture(scope="module")
def sliced_run(tmp_path_factory, tiny_model_dir):
    """A sentiment table whose "forum" rows have random labels, trained one step; the validation predictions are
    then set to the rule the words follow, so only a correct alignment of rows and kept columns makes "forum" the
    worst source."""
    from core.runs.run_folder import RunFolder
    from core.runs.store import RunStore
    from core.train import service

    rng = np.random.default_rng(1)
    n = 240
    source = rng.choice(["news", "forum", "blog"], n)
    good = rng.random(n) < 0.5
    label = np.where(good, "pos", "neg")
    label = np.where(source == "forum", rng.choice(["pos", "neg"], n), label)
    frame = pd.DataFrame({"id": range(1000, 1000 + n), "text": [f"this is {'good' if g else 'bad'} item {i}"
                                                                for i, g in enumerate(good)],
                          "label": label, "source": source, "year": rng.integers(2000, 2020, n),
                          "comment": [f"free text number {i} " * 3 for i in range(n)]})
    frame.loc[[3, 50, 51], "label"] = ""  # rows cleaning drops: the kept columns must still line up
    plan = service.plan_run(frame, {"base_model": str(tiny_model_dir), "max_steps": 1, "max_length": 16,
                                    "precision": "fp32", "val_fraction": 0.5})
    job, _ = service.train(plan, RunStore(tmp_path_factory.mktemp("slice-runs")))
    folder = RunFolder(job.run_dir)
    predictions = folder.predictions()
    folder.write_predictions(predictions.assign(
        predicted=np.where(predictions["text"].str.contains("good"), "pos", "neg")))
    return job.run_dir


def test_kept_columns_leave_out_identifiers_and_free_text(sliced_run):
    from core.insight.slices import INPUT_LENGTH, choices
    from core.runs.run_folder import RunFolder

    kept = RunFolder(sliced_run).slices()
    assert list(kept.columns) == ["source", "year"] and len(kept) == len(RunFolder(sliced_run).dataset()) == 237
    assert choices(sliced_run) == ["source", "year", INPUT_LENGTH]


def test_the_noisy_source_comes_first_with_lower_accuracy(sliced_run):
    from core.insight.slices import slice_run

    found = slice_run(sliced_run, "source")
    assert found.metric == "accuracy" and sum(s.rows for s in found.slices) == found.rows == 118
    worst, *clean = found.slices
    assert worst.value == "forum" and worst.metric < 0.75 and worst.high < 1.0
    assert [s.metric for s in clean] == [1.0, 1.0] and all(s.low > worst.metric for s in clean)
    assert list(found.table().columns) == ["source", "rows", "accuracy", "95% interval"]


def test_a_year_column_is_cut_into_four_ranges(sliced_run):
    from core.insight.slices import slice_run

    found = slice_run(sliced_run, "year")
    assert len(found.slices) == 4 and all("–" in s.value for s in found.slices)
    bounds = sorted(tuple(map(int, s.value.split("–"))) for s in found.slices)
    assert bounds[0][0] >= 2000 and bounds[-1][1] <= 2019
    assert all(a[1] < b[0] for a, b in zip(bounds, bounds[1:]))  # ranges do not overlap
    assert len(slice_run(sliced_run, "input length").slices) == 4


def test_an_identifier_is_refused_with_the_columns_that_can_be_used(sliced_run, capsys):
    from core.cli.main import main
    from core.insight.slices import slice_run

    with pytest.raises(DataError, match=r"sliced by 'id'.*Slice by one of: source, year, input length"):
        slice_run(sliced_run, "id")
    assert main(["slices", "--run", str(sliced_run), "--by", "source", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["slices"][0]["value"] == "forum"
    assert main(["slices", "--run", str(sliced_run), "--by", "comment"]) == 2
    assert "Slice by one of: source, year, input length" in capsys.readouterr().err


def test_wilson_interval_matches_the_formula():
    from core.insight.slices import wilson

    low, high = wilson(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == 1.0
