"""From Chromium: the Monitor tab's Review panel shows one logged prediction at a time; 1 picks the first label,
Enter saves it into the log's feedback, S skips, and the reviewed rows become a training table and a held-out file."""
from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest
from test_browser import browser, page, shot  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


def test_review_panel_answers_with_keys_and_makes_a_table(page, app, tiny_model_dir):
    from core.deploy.monitoring.monitor import Monitor
    from core.deploy.predict import Predictor
    from core.deploy.serve import plain
    from core.runs.config import TrainConfig
    from core.runs.run_folder import RunFolder
    from core.runs.store import RunStore
    from core.tasks import prepare_data
    from core.train.engine import TrainingJob

    rows = [{"review": f"this film is {w} and I {'loved' if s == 'pos' else 'hated'} it {i}", "sentiment": s}
            for i in range(5) for s, words in (("pos", ["great", "lovely", "superb"]),
                                               ("neg", ["awful", "dreadful", "useless"])) for w in words]
    config = TrainConfig(base_model=str(tiny_model_dir), epochs=1, batch_size=16, max_length=32, learning_rate=1e-3,
                         precision="fp32")
    job = TrainingJob(config, prepare_data("classification", pd.DataFrame(rows)), RunStore(app.runs),
                      data_name="reviews-served")
    job.run()
    predictor = Predictor(job.run_dir)
    texts = [f"a film that was {w}" for w in ("fine", "dull", "moving", "long", "brilliant", "slow")]
    monitor = Monitor(predictor, job.run_dir, log_inputs=True)
    predictions = predictor.predict(texts)
    monitor.record({"text": texts}, predictions, [plain(p) for p in predictions], latency_ms=10.0)
    monitor.log.flush()

    page.get_by_role("tab", name="Monitor").click()
    page.wait_for_function(f"document.querySelector('#monitor-run input')?.value == '{job.run_dir.name}'",
                           timeout=30_000)
    page.locator("#review-panel .label-wrap").first.click()
    page.locator("#review-load").click()
    page.locator("#review-item [data-review-id]").wait_for(timeout=30_000)
    first = page.locator("#review-item [data-review-id]").get_attribute("data-review-id")
    assert "1 of 6" in page.locator("#review-item").inner_text()
    page.keyboard.press("1")  # the first label: 'neg'
    page.wait_for_function("document.querySelector('#review-label input[type=radio]')?.checked", timeout=10_000)
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#review-accuracy-line')?.innerText.startsWith('1 reviewed')",
                           timeout=30_000)
    assert "2 of 6" in page.locator("#review-item").inner_text()
    truths = dict(sqlite3.connect(job.run_dir / RunFolder.MONITOR_DB).execute("SELECT id, truth FROM feedback"))
    assert {k: json.loads(v) for k, v in truths.items()} == {first: "neg"}
    page.keyboard.press("s")
    page.wait_for_function("document.querySelector('#review-item')?.innerText.includes('3 of 6')", timeout=10_000)
    shot(page, "review-1-item")

    page.locator("#review-make-table").click()
    page.wait_for_function("document.querySelector('#review-message')?.innerText.includes('reviewed rows held out')",
                           timeout=30_000)
    assert page.locator("#review-table-file a").count() == 2
