"""The hostile-input corpus (tests/fixtures/bad) through the engine and through the running app's API."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core.common.errors import DataError
from core.data.tables import read_table
from core.tasks import prepare_data

CORPUS = Path(__file__).parents[1] / "fixtures" / "bad"
EXPECTED: dict[str, str | None] = json.loads((CORPUS / "EXPECTED.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[Path, str | None]:
    """Inputs too large to commit: 200k rows, a 1 MB cell, 10 000 distinct labels."""
    out = tmp_path_factory.mktemp("big")
    words = ["good", "bad", "fine", "awful", "great", "poor", "nice", "sad"]
    big = out / "rows_200k.csv"
    pd.DataFrame({"text": [f"row {i} is {words[i % 8]} and {words[(i * 7) % 8]}" for i in range(200_000)],
                  "label": [("pos", "neg")[i % 2] for i in range(200_000)]}).to_csv(big, index=False)
    cell = out / "one_mb_cell.csv"
    pd.DataFrame({"text": ["x" * 1_000_000] + [f"short text {i}" for i in range(9)],
                  "label": ["a", "b"] * 5}).to_csv(cell, index=False)
    labels = out / "labels_10000.csv"
    pd.DataFrame({"text": [f"sentence number {i}" for i in range(10_000)],
                  "label": [f"class {i}" for i in range(10_000)]}).to_csv(labels, index=False)
    return {big: None, cell: None, labels: "different values"}


def check(path: Path, expected: str | None) -> str:
    """Load and prepare one file; return the outcome and assert it is the expected one."""
    try:
        data = prepare_data("classification", read_table(path))
    except DataError as exc:
        assert expected is not None, f"{path.name} should load but failed: {exc.message}"
        assert expected.lower() in exc.message.lower(), exc.message
        return "clear error"
    assert expected is None, f"{path.name} should fail with '{expected}'"
    assert len(data.label_names) >= 2 and len(data) >= 4
    return "loaded"


def test_corpus_has_at_least_30_files():
    assert len(EXPECTED) >= 30
    assert all((CORPUS / name).is_file() for name in EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_engine_gives_a_clear_outcome(name):
    check(CORPUS / name, EXPECTED[name])


def test_large_generated_inputs(generated):
    for path, expected in generated.items():
        check(path, expected)


def test_chinese_gbk_labels_keep_their_characters():
    data = prepare_data("classification", read_table(CORPUS / "gbk_chinese_labels.csv"))
    assert set(data.label_names) == {"正面", "负面"}
    assert data.texts[0] == "这是一个非常好的产品，我非常喜欢它。"


def test_no_header_gets_generic_column_names():
    data = prepare_data("classification", read_table(CORPUS / "no_header.csv"))
    assert data.columns["text"] == "column_1" and len(data) == 12


def test_run_folder_name_cannot_escape_the_runs_root(tmp_path):
    from core.runs.store import RunStore

    store = RunStore(tmp_path / "runs")
    path = store.create("../../etc/passwd")
    assert path.parent == store.root and ".." not in path.name


def test_every_file_through_the_app_api(app):
    """Each file uploaded to the running app: a message in the page, never a traceback; the app keeps serving."""
    from gradio_client import Client, handle_file

    client = Client(app.url, verbose=False)
    outcomes = {}
    for name, expected in EXPECTED.items():
        *_, message = client.predict(handle_file(str(CORPUS / name)), api_name="/load_data")
        assert "Traceback" not in message
        if expected is None:
            assert "rows kept" in message, (name, message)
        else:
            assert expected.lower() in message.lower(), (name, message)
        outcomes[name] = "loaded" if expected is None else "clear error"
    print(f"\n{len(outcomes)} files through the API: {sum(v == 'loaded' for v in outcomes.values())} loaded, "
          f"{sum(v == 'clear error' for v in outcomes.values())} clear errors, 0 crashes")
    *_, message = client.predict(handle_file(str(CORPUS / "semicolon.csv")), api_name="/load_data")
    assert "rows kept" in message
