"""From Chromium: a 6-trial search fills its trials table live, prunes a hopeless trial, draws Optuna's plots, and
"Use the best" makes a run at least as good as the page's own settings (trial 0) on the same split."""
from __future__ import annotations

import re

import pandas as pd
import pytest
from test_browser import browser, page, shot, wait_for_sample  # noqa: F401 (fixtures)

from bench.browser_app import open_advanced

pytestmark = pytest.mark.browser


def set_number(page, selector: str, value: str) -> None:
    field = page.locator(f"{selector} input[type=number]")
    field.fill(value)
    field.press("Enter")


def trials_on_page(page) -> pd.DataFrame:
    rows = page.locator("#search-trials table tbody tr")
    cells = [[c.inner_text().strip() for c in rows.nth(i).locator("td").all()] for i in range(rows.count())]
    return pd.DataFrame(cells, columns=["trial", "state", "settings", "macro_f1", "seconds", "run", "note"])


def test_search_fills_live_prunes_and_the_best_beats_the_page_settings(page, sample_cache, tmp_path):
    from core.data.samples import sample_path

    news = pd.read_csv(sample_path("bbc_news"))
    small = news.groupby("label", group_keys=False).head(24)  # 120 rows, 24 per class
    path = tmp_path / "news_small.csv"
    small.to_csv(path, index=False)
    wait_for_sample(page)
    page.locator("#data-upload input[type=file]").set_input_files(str(path))
    page.wait_for_function("document.querySelector('#data-message')?.innerText.includes('120 rows kept')",
                           timeout=60_000)

    page.get_by_role("tab", name="Train").click()
    open_advanced(page)
    page.locator("#few-shot").get_by_label("off", exact=True).check()  # 24 rows a class: auto would pick few-shot
    set_number(page, "#epochs", "2")
    set_number(page, "#max-length", "32")
    page.wait_for_function("document.querySelector('#train-schedule')?.innerText.includes('2 epochs (as set)')")
    page.get_by_text("Search settings (Optuna)").click()
    ranges = page.locator("#search-ranges textarea")
    ranges.fill("learning_rate=1e-05:0.003; epochs=1:2")
    page.locator("#search-start").click()
    page.wait_for_function("document.querySelector('#search-message')?.innerText.includes('Searching')", timeout=60_000)
    page.wait_for_function("document.querySelector('#search-trials')?.innerText.includes('complete') && "
                           "document.querySelector('#search-message')?.innerText.includes('Searching')",
                           timeout=600_000)  # the table fills while the study runs
    page.locator("#loss-curve .plot-container").wait_for(timeout=60_000)  # the running trial's live curve
    shot(page, "search-1-running")
    page.wait_for_function("document.querySelector('#search-message')?.innerText.includes('Search finished')",
                           timeout=1_200_000)
    page.locator("#search-best-curve .plot-container").wait_for(timeout=30_000)
    page.locator("#search-importance .plot-container").wait_for(timeout=30_000)
    page.locator("#search-parallel .plot-container").wait_for(timeout=30_000)
    shot(page, "search-2-finished")

    trials = trials_on_page(page)
    assert len(trials) == 6, trials
    assert trials["state"].str.startswith("pruned").any(), trials
    baseline = trials.loc[trials["trial"] == "0"].iloc[0]  # trial 0: the page's own settings
    assert baseline["state"] == "complete" and "epochs=2" in baseline["settings"], trials
    complete = trials[trials["state"] == "complete"]
    best = complete.loc[complete["macro_f1"].astype(float).idxmax()]

    page.locator("#search-use-best").click()
    best_epochs = re.search(r"epochs=(\d+)", best["settings"]).group(1)
    page.wait_for_function(f"document.querySelector('#epochs input[type=number]').value == '{best_epochs}'",
                           timeout=30_000)
    finished = "#train-outcome .sft-ok"  # the outcome itself, not a progress overlay drawn over it
    shown_before = page.locator(finished).first.inner_text()  # the last trial's outcome, until the new run's
    page.locator("#start-train").click()
    page.wait_for_function("(before) => { const text = document.querySelector('#train-outcome .sft-ok')?.innerText "
                           "|| ''; return text.includes('Finished') && text !== before; }", arg=shown_before,
                           timeout=600_000)
    outcome = page.locator(finished).first.inner_text()
    found = re.search(r"macro-F1 ([0-9.]+)", outcome)
    assert found, outcome
    reached = float(found.group(1))
    shot(page, "search-3-use-best")
    print(f"\nsearch: trial 0 (page settings) macro-F1 {baseline['macro_f1']}, best trial {best['trial']} "
          f"{best['macro_f1']}; the run made with the best settings: {reached:.4f}")
    assert reached >= float(baseline["macro_f1"]) - 1e-4, (outcome, trials)
