"""Real headless Chromium against the running app: upload, train with a live curve, evaluate, predict."""
from __future__ import annotations

import json
import re
import time

import pandas as pd
import pytest
from conftest import ARTIFACTS, training_processes

from bench.browser_app import launch_chromium, open_advanced

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


@pytest.fixture
def page(browser, app):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
    page = context.new_page()
    page.goto(app.url)
    yield page
    context.close()


def wait_for_sample(page):
    """The page loads the sample dataset on open; wait for it so it cannot overwrite a later upload's message."""
    page.wait_for_function("document.querySelector('#data-message')?.innerText.includes('rows kept')", timeout=60_000)


def wait_until_still(page, selector: str, quiet_s: float = 3, timeout_s: float = 120) -> None:
    """Wait until an element's text stops changing (a streamed answer has ended)."""
    last, since, deadline = None, time.time(), time.time() + timeout_s
    while time.time() < deadline:
        now = page.locator(selector).inner_text()
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= quiet_s:
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"{selector} kept changing for {timeout_s} s")


def settled_estimate(page) -> float:
    """The seconds the page estimates beside Start, once settled (the first time after a short speed test)."""
    page.locator("#estimate-text").wait_for(timeout=300_000)
    wait_until_still(page, "#train-estimate", quiet_s=2)
    return float(page.locator("#estimate-text").get_attribute("data-seconds"))


def check_estimate(name: str, estimated: float, started: float) -> None:
    """The estimate shown before Start is within a factor of 3 of the time from Start to Finished: a wrong schedule,
    unit or forgotten part fails it, while a machine shared with other work (CI) does not. The +-50% target on a
    quiet machine is a benchmark (`make bench-estimate`), where the short test and the run share one load."""
    measured = time.time() - started
    line = (f"{name}: estimated {estimated:.0f} s before Start, took {measured:.0f} s from Start to Finished "
            f"(ratio {estimated / measured:.2f})")
    print("\n" + line)
    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / "estimates.txt", "a", encoding="utf-8") as log:  # kept with the screenshots
        log.write(f"{time.strftime('%Y-%m-%d %H:%M')} {line}\n")
    assert measured / 3 <= estimated <= 3 * measured, line


def shot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def predicted_label(page, timeout_ms: int = 60_000) -> tuple[str, str]:
    """(the predicted label, the whole text) of the Predict tab's label, once shown and no longer marked as processing
    (the explanation that follows a prediction updates the page after it)."""
    page.wait_for_function("(t => t.includes('%') && !t.includes('processing'))"
                           "(document.querySelector('#predict-label')?.innerText || '')", timeout=timeout_ms)
    text = page.locator("#predict-label").inner_text()
    lines = text.split("\n")
    return lines[lines.index("Prediction") + 1], text  # "Prediction", the top label, then each label's share


def test_upload_train_evaluate_predict(page, sample_cache):
    from core.data.samples import sample_path

    wait_for_sample(page)
    page.get_by_role("tab", name="Runs").click()  # a first visit: three steps where the runs table would be
    page.locator("#runs-first-steps").wait_for(timeout=30_000)
    assert "three steps" in page.locator("#runs-first-steps").inner_text()
    shot(page, "0-first-visit")
    page.get_by_role("tab", name="Data").click()
    page.locator("#data-upload input[type=file]").set_input_files(str(sample_path("bbc_news")))
    page.wait_for_function("document.querySelector('#data-message')?.innerText.includes('bbc_news.csv')", timeout=60_000)
    assert "600 rows kept" in page.locator("#data-message").inner_text()
    page.locator("#class-balance .plot-container").wait_for(timeout=30_000)
    shot(page, "1-data")

    page.get_by_role("tab", name="Train").click()
    page.get_by_label("Fast").check()
    assert not page.locator("#lr").is_visible()  # the basic view: model, preset, schedule, the estimate
    estimated = settled_estimate(page)
    assert "GB of memory" in page.locator("#estimate-text").inner_text()
    shot(page, "2a-train-basic-view-and-estimate")
    open_advanced(page)
    page.wait_for_function("document.querySelector('#epochs input[type=number]').value == '1'")
    started = time.time()
    page.locator("#start-train").click()
    page.locator("#train-progress-text").wait_for(timeout=60_000)
    first_step_s = time.time() - started
    page.wait_for_function("document.querySelectorAll('#loss-curve .scatterlayer .trace .points path').length > 0 || "
                           "document.querySelectorAll('#loss-curve .scatterlayer .trace path.js-line').length > 0",
                           timeout=30_000)
    print(f"\nStart -> first step in the progress bar: {first_step_s:.1f} s; "
          f"-> first loss point on the curve: {time.time() - started:.1f} s")
    shot(page, "2-train-running")
    page.wait_for_function("document.querySelector('#train-outcome')?.innerText.includes('Finished')", timeout=300_000)
    check_estimate("bbc_news, 600 rows, Fast", estimated, started)
    outcome = page.locator("#train-outcome").inner_text()
    accuracy = float(re.search(r"accuracy ([0-9.]+)", outcome).group(1))
    assert accuracy > 0.5, outcome  # 5 balanced classes: chance is 0.2
    assert classical_on_page(page, "classification") > 0.5  # TF-IDF + logistic regression, fitted before step 1
    assert "classical" in page.locator("#train-verdict").inner_text()
    assert page.locator("#metric-cards .sft-card").count() == 5
    shot(page, "3-train-finished")

    page.get_by_role("tab", name="Evaluate").click()
    page.wait_for_function("document.querySelector('#eval-summary')?.innerText.includes('macro-F1')", timeout=30_000)
    page.locator("#eval-confusion .plot-container").wait_for(timeout=30_000)
    shot(page, "4-evaluate")

    page.get_by_role("tab", name="Predict").click()
    from core.data.tables import read_table

    examples = page.locator("#predict-examples tbody tr")  # the run's own validation articles
    examples.first.wait_for(timeout=30_000)
    assert 5 <= examples.count() <= 8
    examples.first.click()
    page.wait_for_function("document.querySelector('#predict-text textarea').value.length > 100")
    chosen = " ".join(page.locator("#predict-text textarea").input_value().split())
    assert chosen in set(read_table(sample_path("bbc_news"))["text"].map(lambda t: " ".join(t.split())))
    page.locator("#predict-text textarea").fill("The striker scored twice as the champions won")
    page.locator("#predict-text textarea").press("Shift+Enter")  # a new line, no prediction
    page.locator("#predict-text textarea").press_sequentially("the cup final.")
    assert page.locator("#predict-text textarea").input_value().endswith("won\nthe cup final.")
    page.locator("#predict-text textarea").press("Enter")  # predicts
    page.wait_for_function("document.querySelector('#predict-label')?.innerText.includes('%')", timeout=30_000)
    label_text = page.locator("#predict-label").inner_text()
    assert re.search(r"(business|entertainment|politics|sports|tech)", label_text), label_text
    assert re.search(r"\d+%", label_text), label_text
    page.locator("#predict-explanation").wait_for(timeout=60_000)  # which words moved it, as a heat map
    explained = page.locator("#predict-explanation").inner_text()
    assert "striker" in explained and "final" in explained, explained
    shot(page, "5-predict")

    page.get_by_role("tab", name="Runs").click()
    page.wait_for_function("document.querySelector('#runs-table')?.innerText.includes('finished')", timeout=30_000)
    header = page.locator("#runs-table thead").inner_text()
    assert all(name in header for name in ("task", "metric", "score", "classical", "trivial", "minutes", "MB")), header
    shot(page, "6-runs")

    other = page.context.browser.new_context(locale="en-US").new_page()  # a second user, own browser storage
    other.goto(page.url)
    other.get_by_role("tab", name="Runs").click()
    other.locator("#runs-first-steps").wait_for(timeout=30_000)  # no run of theirs: the three steps
    assert "bbc_news" not in other.locator("body").inner_text()
    other.context.close()
    page.locator("#runs-share").click()
    page.wait_for_function("document.querySelector('#runs-message')?.innerText.includes('now shared')", timeout=30_000)
    other = page.context.browser.new_context(locale="en-US").new_page()
    other.goto(page.url)
    other.get_by_role("tab", name="Runs").click()
    other.wait_for_function("document.querySelector('#runs-table')?.innerText.includes('bbc_news')", timeout=30_000)
    other.context.close()


def test_bad_upload_shows_a_message_and_app_keeps_serving(page, tmp_path):
    bad = tmp_path / "photo.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    wait_for_sample(page)
    page.locator("#data-upload input[type=file]").set_input_files(str(bad))
    page.wait_for_function("document.querySelector('#data-message')?.innerText.includes('not a table')", timeout=30_000)
    assert "Traceback" not in page.content()
    shot(page, "7-bad-upload")
    single = tmp_path / "one_class.csv"
    single.write_text("text,label\n" + "".join(f"sentence number {i},same\n" for i in range(10)))
    page.reload()
    wait_for_sample(page)
    page.locator("#data-upload input[type=file]").set_input_files(str(single))
    page.wait_for_function("document.querySelector('#data-message')?.innerText.includes('same label')", timeout=30_000)


@pytest.mark.slow
def test_chinese_reviews_preselect_multilingual_e5_which_learns_them(page, sample_cache):
    """Chinese upload -> the Data tab names and the Train tab pre-selects multilingual-e5-small -> trained with the
    Fast preset it beats the majority class by more than 0.2 -> Predict calls a glowing review positive."""
    from core.data.samples import sample_path

    wait_for_sample(page)
    page.locator("#data-upload input[type=file]").set_input_files(str(sample_path("chinese_reviews")))
    page.wait_for_function("document.querySelector('#data-message')?.innerText.includes('chinese_reviews.csv')",
                           timeout=60_000)
    message = page.locator("#data-message").inner_text()
    assert "Suggested base model: multilingual-e5-small" in message and "all-MiniLM-L6-v2 6" in message, message
    page.get_by_role("tab", name="Train").click()
    page.wait_for_function("document.querySelector('#base-model input')?.value.startsWith('multilingual-e5-small')",
                           timeout=30_000)
    page.get_by_label("Fast").check()
    estimated = settled_estimate(page)
    open_advanced(page)
    page.wait_for_function("document.querySelector('#epochs input[type=number]').value == '1'")
    started = time.time()
    page.locator("#start-train").click()
    page.wait_for_function("document.querySelector('#train-outcome')?.innerText.includes('Finished')", timeout=600_000)
    check_estimate("chinese_reviews, multilingual-e5-small, Fast", estimated, started)
    outcome = page.locator("#train-outcome").inner_text()
    shot(page, "e5-1-finished")
    accuracy = float(re.search(r"accuracy ([0-9.]+)", outcome).group(1))
    majority = float(re.search(r"baseline: .*?accuracy ([0-9.]+)", outcome).group(1))
    assert accuracy > majority + 0.2, outcome

    page.get_by_role("tab", name="Predict").click()
    page.locator("#predict-text textarea").fill("这是一个非常好的产品")
    page.locator("#predict-button").click()
    label, label_text = predicted_label(page)
    assert label == "pos", label_text
    shot(page, "e5-2-predict")


def test_chinese_browser_gets_chinese_labels(browser, app):
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(app.url)
    page.get_by_role("tab", name="2 · 训练").wait_for(timeout=30_000)
    context.close()


@pytest.mark.slow
def test_assistant_lora_then_chat_then_preference_tuning(page, sample_cache, tmp_path):
    """Question/answer sample -> SmolLM2 + LoRA (top layers) trained from the browser -> chat with it and its base;
    then a preference table -> DPO on top of that run (offered as the base model) with a live reward curve -> chat
    with the tuned run beside the SFT run."""
    wait_for_sample(page)
    page.locator("#sample-choice input").click()
    page.get_by_role("option", name="Question/answer pairs").click()
    page.locator("#use-sample").click()
    page.wait_for_function("document.querySelector('#data-message')?.innerText.includes('prompt/response pairs')",
                           timeout=60_000)

    page.get_by_role("tab", name="Train").click()
    page.wait_for_function("document.querySelector('#base-model input')?.value.startsWith('SmolLM2')", timeout=30_000)
    page.get_by_label("Fast").check()
    open_advanced(page)
    page.wait_for_function("document.querySelector('#epochs input[type=number]').value == '1'")
    page.get_by_text("LoRA (train small adapters").click()
    page.locator("#lora input[type=checkbox]").check()
    for selector, value in (("#epochs", "0.1"), ("#val-frac", "0.05"), ("#lora-layers", "8"),
                            ("#eval-every-steps", "4")):  # 4 steps; each evaluation generates answers (~10 s)
        field = page.locator(f"{selector} input[type=number]").first
        field.fill(value)
        field.press("Enter")
    from core.models.registry import DEFAULT_CHAT_MODEL, resolve_model_path

    resolve_model_path(DEFAULT_CHAT_MODEL)  # converted once into the shared cache, so the figure below is a user's usual start
    started = time.time()
    page.locator("#start-train").click()
    page.wait_for_function("document.querySelectorAll('#loss-curve .scatterlayer .trace .points path').length > 0 || "
                           "document.querySelectorAll('#loss-curve .scatterlayer .trace path.js-line').length > 0",
                           timeout=120_000)
    print(f"\nSmolLM2 + LoRA: Start -> first loss point on the curve: {time.time() - started:.1f} s")
    page.wait_for_function("document.querySelector('#train-outcome')?.innerText.includes('Finished')", timeout=400_000)
    outcome = page.locator("#train-outcome").inner_text()
    assert "perplexity" in outcome.lower(), outcome
    shot(page, "8-assistant-trained")

    page.get_by_role("tab", name="Chat").click()
    page.wait_for_function("document.querySelector('#chat-run input')?.value.includes('chatterbot-qa')", timeout=30_000)
    field = page.locator("#chat-max-new input[type=number]")
    field.fill("16")
    field.press("Enter")
    page.locator("#chat-text textarea").fill("What is your name?")
    page.locator("#chat-send").click()
    for column in ("#chat-tuned", "#chat-base"):  # the tuned answer streams first, then the base model's
        page.wait_for_function(f"[...document.querySelectorAll('{column} .bot-row')].some(r => r.innerText.trim())",
                               timeout=120_000)
    assert "What is your name?" in page.locator("#chat-tuned").inner_text()
    assert "Traceback" not in page.content()
    shot(page, "9-chat")

    from core.data.samples import sample_path
    from core.data.tables import read_table

    table = tmp_path / "preferences.csv"
    read_table(sample_path("chatterbot_preferences")).head(24).to_csv(table, index=False)
    page.get_by_role("tab", name="Data").click()
    page.locator("#data-upload input[type=file]").set_input_files(str(table))
    page.wait_for_function("document.querySelector('#data-message')?.innerText.includes('24 preference pairs kept')",
                           timeout=60_000)
    page.get_by_role("tab", name="Train").click()
    page.wait_for_function("document.querySelector('#base-model input')?.value.includes('chatterbot-qa')",
                           timeout=30_000)  # the SFT run is offered, and chosen, as the base model
    open_advanced(page)
    for selector, value in (("#epochs", "1"), ("#val-frac", "0.2"), ("#batch-size", "8"),
                            ("#eval-every-steps", "2")):
        field = page.locator(f"{selector} input[type=number]").first
        field.fill(value)
        field.press("Enter")
    page.locator("#start-train").click()
    page.wait_for_function("document.querySelector('#loss-curve')?.innerText.includes('validation reward accuracy')",
                           timeout=600_000)
    page.wait_for_function("document.querySelector('#train-outcome')?.innerText.includes('Finished')", timeout=400_000)
    outcome = page.locator("#train-outcome").inner_text()
    assert "reward accuracy" in outcome and "reward margin" in outcome, outcome
    assert "validation reward margin" in page.locator("#loss-curve").inner_text()
    shot(page, "9b-preference-trained")

    page.get_by_role("tab", name="Chat").click()
    page.locator("#chat-run input").click()
    page.get_by_role("option", name=re.compile("-preferences-")).click()
    page.locator("#chat-clear").click()
    page.locator("#chat-text textarea").fill("Who are you?")
    page.locator("#chat-send").click()
    for column in ("#chat-tuned", "#chat-base"):  # the DPO run, then the SFT run it started from (both may wait
        # for the Train tab's short speed test of the preference settings, which starts once the run has finished)
        page.wait_for_function(f"[...document.querySelectorAll('{column} .bot-row')].some(r => r.innerText.trim())",
                               timeout=300_000)
    assert "Traceback" not in page.content()
    shot(page, "9c-chat-after-preference")

    # preferences from the Chat tab: a thumb on one of the two answers, and a better answer written by hand
    wait_until_still(page, "#chat-base")  # the base model's answer has ended
    page.locator("#chat-tuned button[aria-label='Like']").last.click()
    page.wait_for_function("document.querySelector('#chat-message')?.innerText.includes('(1 in this run)')",
                           timeout=30_000)
    page.locator("#chat-base button[aria-label='Dislike']").last.click()
    page.wait_for_function("document.querySelector('#chat-message')?.innerText.includes('(2 in this run)')",
                           timeout=30_000)
    page.locator("#chat-train-feedback").click()
    page.wait_for_function("document.querySelector('#chat-message')?.innerText.includes('at least 4')", timeout=30_000)
    for count, answer in ((3, "I am a small assistant."), (4, "A helpful assistant, fine-tuned here.")):
        page.locator("#chat-better textarea").fill(answer)
        page.locator("#chat-save-better").click()
        page.wait_for_function(f"document.querySelector('#chat-message')?.innerText.includes('({count} preference')",
                               timeout=30_000)
    page.locator("#chat-train-feedback").click()  # -> the Data tab holds them, the Train tab offers this run
    page.wait_for_function("document.querySelector('#data-message')?.innerText.includes('4 preference pairs kept')",
                           timeout=60_000)
    page.wait_for_function("document.querySelector('#base-model input')?.value.includes('-preferences-')",
                           timeout=30_000)


# sample, rows, preset, lr slider (log10), the Evaluate chart, predict inputs, what the Predict tab must show
NEW_TASKS = {
    "regression": ("sentiment_scores", 500, "Balanced", -4, "What a wonderful, moving film.", "",
                   "#predict-value", 0.3),
    "pairs": ("sts_b_paraphrase", 500, "Fast", -3.5, "A dog runs in the park.", "A dog is running in a park.",
              "#predict-label", 0.2),
    "pair_regression": ("sts_b", 500, "Balanced", -4, "A man is playing a guitar.", "A man plays the guitar.",
                        "#predict-value", 0.3),
    "multi_label": ("movie_genres", 600, "Balanced", -3.5, "A terrifying haunted-house chiller.", "",
                    "#predict-label", 0.05),
    "token_classification": ("conll2003", 600, "Balanced", -3.5, "Angela Merkel met Emmanuel Macron in Paris.", "",
                             "#predict-message :text('(PER)')", 0.15),
}  # ... and the margin by which the primary metric must beat the baseline (seen 2026-11-30: RMSE 1.36 vs 1.89,
#      macro-F1 0.96 vs 0.35, RMSE 0.95 vs 1.45, micro-F1 0.42 vs 0.32, entity F1 0.67 vs 0.42)


# Beat the classical baseline at these settings (seen 2026-12-01: RMSE 1.36 vs 1.78, macro-F1 0.960 vs 0.918,
# RMSE 0.95 vs 1.06); NER (0.667 vs 0.653) is too close to assert, multi-label loses (0.417 vs 0.557).
BEATS_CLASSICAL = {"regression", "pairs", "pair_regression"}


def classical_on_page(page, task: str) -> float:
    """The classical baseline's primary metric as the Train tab shows it beside the metric cards."""
    from core.tasks import get_task

    spec = get_task(task)
    shown = page.locator("#train-baselines").inner_text()
    name = spec.metric_name(spec.primary_metric)
    return float(re.search(rf"{re.escape(spec.classical_name)} {re.escape(name)} ([0-9.]+)", shown).group(1))


@pytest.mark.parametrize("task", list(NEW_TASKS))
def test_each_new_task_from_the_browser(page, task, tmp_path, sample_cache):
    """Upload a table of the task, see the task detected, train the real default model with a live curve until
    it beats the baseline by the task's margin, evaluate, predict. (The one real run per task.)"""
    from core.data.samples import build_sample
    from core.tasks import get_task

    sample, rows, preset, lr, text, second, answer, margin = NEW_TASKS[task]
    data = tmp_path / f"{task}.csv"
    build_sample(sample, rows_per_class=rows, seed=1).to_csv(data, index=False)
    wait_for_sample(page)
    page.locator("#data-upload input[type=file]").set_input_files(str(data))
    page.wait_for_function(f"document.querySelector('#data-message')?.innerText.includes('{task}.csv')",
                           timeout=60_000)
    title = get_task(task).view.title
    assert title in page.locator("#data-message").inner_text()
    assert page.locator("#task input:checked").input_value() == task
    shot(page, f"{task}-1-data")

    page.get_by_role("tab", name="Train").click()
    page.get_by_label(preset).check()
    how = "as set" if preset == "Fast" else "derived from the table's size"  # Fast: one epoch
    page.wait_for_function(f"document.querySelector('#train-schedule')?.innerText.includes(\"{how}\")")
    open_advanced(page)
    page.locator("#lr input[type=number]").fill(str(lr))
    page.locator("#lr input[type=number]").press("Enter")
    if preset != "Fast":  # 3 epochs (75 steps on 400 rows) instead of the derived 300 keep the suite's minutes
        page.locator("#epochs input[type=number]").fill("3")
        page.locator("#epochs input[type=number]").press("Enter")
        page.wait_for_function("document.querySelector('#train-schedule')?.innerText.includes('3 epochs (as set)')")
    estimated = settled_estimate(page)
    started = time.time()
    page.locator("#start-train").click()
    page.locator("#train-progress-text").wait_for(timeout=60_000)
    page.wait_for_function("document.querySelectorAll('#loss-curve .scatterlayer .trace path.js-line').length > 0",
                           timeout=60_000)
    page.wait_for_function("document.querySelector('#train-outcome')?.innerText.includes('Finished')", timeout=400_000)
    check_estimate(f"{sample}, {len(pd.read_csv(data))} rows, {preset}", estimated, started)
    outcome = page.locator("#train-outcome").inner_text()
    key, name = get_task(task).view.cards[0]
    value, baseline = map(float, re.findall(rf"{re.escape(name)} ([0-9.]+)", outcome)[:2])
    better = value <= baseline - margin if not get_task(task).greater_is_better else value >= baseline + margin
    assert better, outcome
    classical = classical_on_page(page, task)
    beats = value < classical if not get_task(task).greater_is_better else value > classical
    print(f"\n{task}: {name} {value} vs classical {classical}, trivial {baseline}")
    assert beats or task not in BEATS_CLASSICAL, outcome  # ... and the page says which in plain words
    assert ("Beats the classical baseline" if beats else "does as well or better") in outcome, outcome
    shot(page, f"{task}-2-trained")

    page.get_by_role("tab", name="Evaluate").click()
    page.wait_for_function("document.querySelector('#eval-summary')?.innerText.includes('baseline')", timeout=30_000)
    page.locator("#eval-confusion .plot-container").wait_for(timeout=30_000)
    shot(page, f"{task}-3-evaluate")

    page.get_by_role("tab", name="Predict").click()
    shown, hidden = ("#predict-pair-examples", "#predict-examples") if second else ("#predict-examples",
                                                                                  "#predict-pair-examples")
    page.locator(f"{shown} tbody tr").first.wait_for(timeout=30_000)  # rows of this run's own validation data
    assert not page.locator(hidden).is_visible()
    cells = page.locator(f"{shown} tbody tr").first.locator("td")
    assert cells.count() == (2 if second else 1)
    assert cells.first.inner_text().split()[0] in data.read_text(encoding="utf-8")
    page.locator("#predict-text textarea").fill(text)
    if second:
        page.locator("#predict-text-b textarea").wait_for(timeout=30_000)
        page.locator("#predict-text-b textarea").fill(second)
    page.locator("#predict-button").click()
    page.locator(answer).first.wait_for(timeout=30_000)
    if task == "token_classification":
        page.wait_for_function("document.querySelector('#predict-spans')?.innerText.includes('Merkel')")
    shot(page, f"{task}-4-predict")


def shingle_set(text: str) -> set[str]:
    key = " ".join(text.casefold().split())
    return {key[i:i + 5] for i in range(max(1, len(key) - 4))}


def distinct_tweets(n: int) -> pd.DataFrame:
    """n real tweets, none a near copy of another (checked pair by pair, independently of the app)."""
    from core.data.samples import sample_path

    frame = pd.read_csv(sample_path("tweet_sentiment"), dtype=str).head(3 * n)
    kept, sets = [], []
    for i, text in enumerate(frame["text"]):
        s = shingle_set(text)
        if len(text) > 40 and all(len(s & t) / len(s | t) < 0.5 for t in sets):
            kept.append(i)
            sets.append(s)
    return frame.iloc[kept[:n]].reset_index(drop=True)


def test_data_quality_report_finds_the_injected_flaws_and_fixes_them(page, tmp_path, sample_cache):
    """Real tweets + 5 exact copies (some re-cased) + 3 texts under a second label: the report counts exactly
    those, and the validation rows they leak into; 'Drop exact duplicates' removes the copies."""
    from core.tasks import get_task
    from core.tasks.types import TaskData

    base = distinct_tweets(150)
    copies = base.iloc[:5].assign(text=lambda f: [t.upper() if i % 2 else t + "  " for i, t in enumerate(f["text"])])
    other = {"negative": "positive", "positive": "neutral", "neutral": "negative"}
    conflicts = base.iloc[10:13].assign(label=lambda f: f["label"].map(other))
    table = pd.concat([base, copies, conflicts], ignore_index=True)
    path = tmp_path / "flawed_tweets.csv"
    table.to_csv(path, index=False)
    task = get_task("classification")  # where a random split (the report's defaults) puts each copy
    data = task.prepare(table)
    train, val = task.split(TaskData({**data.inputs, "_row": list(range(len(data)))}, data.targets, {},
                                     data.label_names), 0.2, 42)
    origin = {150 + i: i for i in range(5)} | {155 + i: 10 + i for i in range(3)}
    group = [origin.get(i, i) for i in range(len(table))]
    train_groups = {group[i] for i in train.inputs["_row"]}
    leaked = sum(1 for i in val.inputs["_row"] if group[i] in train_groups)

    wait_for_sample(page)
    page.locator("#data-upload input[type=file]").set_input_files(str(path))
    page.wait_for_function("document.querySelector('#data-message')?.innerText.includes('flawed_tweets.csv')",
                           timeout=60_000)
    page.locator("#data-quality-run").click()
    page.wait_for_function("document.querySelector('#data-quality')?.innerText.includes('rows checked')", timeout=60_000)
    counts = page.eval_on_selector_all("#data-quality .dq-finding",
                                       "els => Object.fromEntries(els.map(e => [e.dataset.key, +e.dataset.count]))")
    assert counts["exact_duplicates"] == 5 and counts["conflicting_labels"] == 3, counts
    assert counts["near_duplicates"] == 0 and counts["leakage"] == leaked, (counts, leaked)
    shot(page, "dq-1-report")
    page.locator("#fix-drop-duplicates").click()
    page.wait_for_function("document.querySelector('#data-quality')?.innerText.includes('Dropped 5 duplicate')",
                           timeout=60_000)
    counts = page.eval_on_selector_all("#data-quality .dq-finding",
                                       "els => Object.fromEntries(els.map(e => [e.dataset.key, +e.dataset.count]))")
    assert counts["exact_duplicates"] == 0 and counts["conflicting_labels"] == 3, counts
    assert f"{len(table) - 5} rows kept" in page.locator("#data-message").inner_text()
    shot(page, "dq-2-fixed")


@pytest.fixture(scope="module")
def two_binary_runs(app, tmp_path_factory, sample_cache) -> list[str]:
    """Two real MiniLM runs on positive/negative tweets (different learning rates), trained through the API."""
    from gradio_client import Client, handle_file

    table = distinct_tweets(400)
    table = table[table["label"] != "neutral"]
    path = tmp_path_factory.mktemp("binary") / "binary_tweets.csv"
    table.to_csv(path, index=False)
    client = Client(app.url, verbose=False)
    ids = []
    for lr in (3e-4, 1e-4):
        config = json.dumps({"epochs": 1, "max_length": 48, "learning_rate": lr, "hidden_dropout": 0.0})
        result = client.predict(handle_file(str(path)), "", "", config, api_name="/train")
        assert result["status"] == "finished", result
        ids.append(result["run_id"])
    return ids


def test_evaluate_draws_roc_pr_calibration_and_saves_a_threshold(page, app, two_binary_runs):
    from safetensors.numpy import load_file
    from sklearn.metrics import roc_auc_score

    from core.deploy.predict import Predictor

    run_id = two_binary_runs[-1]
    page.get_by_role("tab", name="Evaluate").click()
    page.wait_for_function(f"document.querySelector('#eval-run input')?.value.startsWith('{run_id}')", timeout=30_000)
    page.locator("#eval-roc .plot-container").wait_for(timeout=30_000)
    page.locator("#eval-pr .plot-container").wait_for(timeout=30_000)
    page.locator("#eval-reliability .plot-container").wait_for(timeout=30_000)
    legend = page.locator("#eval-roc .legend").text_content()
    outputs = load_file(str(app.runs / run_id / "validation_outputs.safetensors"))
    auc = roc_auc_score(outputs["truth"], outputs["probabilities"][:, 1])
    shown = [float(a) for a in re.findall(r"AUC ([0-9.]+)", legend)]
    assert len(shown) == 2 and all(abs(a - auc) < 6e-4 for a in shown), (legend, auc)
    assert "Expected calibration error" in page.locator("#eval-reliability").text_content()

    field = page.locator("#eval-threshold input[type=number]")
    field.fill("0.3")
    field.press("Enter")
    page.wait_for_function("document.querySelector('#eval-threshold-metrics')?.innerText.includes('0.30')",
                           timeout=30_000)
    positive = outputs["probabilities"][:, 1] >= 0.3
    recall = (positive & (outputs["truth"] == 1)).sum() / (outputs["truth"] == 1).sum()
    assert f"recall {recall:.4f}" in page.locator("#eval-threshold-metrics").inner_text()
    page.locator("#eval-save-threshold").click()
    page.wait_for_function("document.querySelector('#eval-threshold-metrics')?.innerText.includes('Saved')",
                           timeout=30_000)
    shot(page, "insight-1-evaluate")
    predictions = Predictor(app.runs / run_id).predict(["thanks, great flight", "worst airline ever", "meh"])
    assert [p.label for p in predictions] == [
        "positive" if p.probabilities["positive"] >= 0.3 else "negative" for p in predictions]


def test_runs_tab_compares_two_finished_runs(page, two_binary_runs):
    page.get_by_role("tab", name="Runs").click()
    page.wait_for_function("document.querySelector('#runs-table')?.innerText.includes('binary_tweets')", timeout=30_000)
    for run_id in two_binary_runs:
        page.locator("#compare-runs input").click()
        page.get_by_role("option", name=run_id).click()
    page.locator("#compare-button").click()
    page.locator("#compare-curves .plot-container").wait_for(timeout=30_000)
    legend = page.locator("#compare-curves .legend").text_content()
    assert all(legend.count(run_id) == 3 for run_id in two_binary_runs), legend  # train, validation loss, metric
    assert page.locator("#compare-per-class .plot-container").count() == 1
    settings = page.locator("#compare-settings").inner_text()
    assert "learning_rate" in settings and "batch_size" not in settings, settings
    shot(page, "insight-2-compare")


def test_two_cpu_processes_from_the_browser_match_one_process(page, app, tmp_path, sample_cache, tiny_model_dir):
    """Train tab with 2 processes of a local model folder (the tiny BERT: this is about the processes; real models
    learn in the other tests): live curve, re-attached after a reload, the same accuracy and validation loss as
    one process with the same global batch (fp32, no dropout); a second run, one of its processes killed, shows as
    interrupted, resumes from the Runs tab and stops on Stop."""
    from core.data.samples import build_sample
    from core.runs import events as ev
    from core.runs.config import TrainConfig
    from core.runs.store import RunStore
    from core.tasks import prepare_data
    from core.train.engine import TrainingJob

    frame = build_sample("tweet_sentiment", rows_per_class=400, seed=3)  # 1200 real tweets, 3 classes
    path, longer = tmp_path / "tweets120.csv", tmp_path / "tweets1200.csv"
    frame.head(120).to_csv(path, index=False)
    frame.to_csv(longer, index=False)

    def upload(table) -> None:
        wait_for_sample(page)
        page.get_by_role("tab", name="1 · Data").click()
        page.locator("#data-upload input[type=file]").set_input_files(str(table))
        page.wait_for_function(f"document.querySelector('#data-message')?.innerText.includes('{table.name}')",
                               timeout=60_000)

    def start_two_process_run(epochs: str) -> None:
        page.get_by_role("tab", name="Train").click()
        for _ in range(3):  # the upload's model suggestion may still arrive and replace the choice: choose again
            page.locator("#base-model input").click()
            page.get_by_role("option", name="local folder…").click()
            page.locator("#local-path textarea, #local-path input").first.fill(str(tiny_model_dir))
            page.locator("#local-path textarea, #local-path input").first.press("Enter")
            page.wait_for_timeout(1500)
            if page.locator("#base-model input").input_value() == "local folder…":
                break
        page.get_by_label("Fast").check()
        open_advanced(page)
        page.wait_for_function("document.querySelector('#epochs input[type=number]').value == '1'")
        page.locator("#precision").get_by_label("fp32").check()
        for selector, value in (("#epochs", epochs), ("#batch-size", "8"), ("#processes", "2")):
            field = page.locator(f"{selector} input[type=number]")
            field.fill(value)
            field.press("Enter")
        page.locator("#start-train").click()

    upload(path)
    start_two_process_run("3")
    page.wait_for_function("document.querySelectorAll('#loss-curve .scatterlayer .trace path.js-line').length > 0 || "
                           "document.querySelectorAll('#loss-curve .scatterlayer .trace .points path').length > 0",
                           timeout=120_000)
    page.reload()  # the job keeps running in its processes; the page re-attaches to it
    page.get_by_role("tab", name="Train").click()
    page.wait_for_function("document.querySelectorAll('#loss-curve .scatterlayer .trace path.js-line').length > 0",
                           timeout=60_000)
    page.wait_for_function("document.querySelector('#train-outcome')?.innerText.includes('Finished')", timeout=300_000)
    run_id = re.search(r"Saved as (\S+);", page.locator("#train-outcome").inner_text()).group(1)
    shot(page, "13-two-processes")
    two = app.runs / run_id
    assert "global batch 16 = 8 per process x 2" in (two / "history.jsonl").read_text()
    trained = json.loads((two / "train_config.json").read_text())
    assert trained["processes"] == 2 and trained["base_model"] == str(tiny_model_dir)

    settings = {**trained, "processes": 1, "batch_size": 16}
    one = TrainingJob(TrainConfig(**settings), prepare_data("classification", pd.read_csv(path)),
                      RunStore(tmp_path / "one"), data_name="tweets120")
    one.run()
    assert isinstance(one.events.since(0)[-1], ev.Finished)
    got, expected = (json.loads((d / "metrics.json").read_text()) for d in (two, one.run_dir))
    assert got["accuracy"] == expected["accuracy"]
    assert got["val_loss"] == pytest.approx(expected["val_loss"], abs=2e-3)

    upload(longer)  # the reload brought back the default sample
    start_two_process_run("20")  # killed after its first checkpoint, resumed from the Runs tab, then stopped
    deadline = time.time() + 120
    while time.time() < deadline:  # the checkpoint is written after the evaluation it follows is logged
        latest = max(app.runs.glob("2*/history.jsonl"), key=lambda p: p.stat().st_mtime)
        if latest.parent != two and (latest.parent / "resume" / "state.pt").is_file():
            break
        time.sleep(0.1)
    killed = latest.parent
    main = json.loads((killed / "status.json").read_text())["pid"]
    next(p for p in training_processes(killed) if p.pid != main).kill()
    page.wait_for_function("document.querySelector('#train-outcome')?.innerText.includes('interrupted')", timeout=60_000)
    page.get_by_role("tab", name="Runs").click()
    page.wait_for_function(f"document.querySelector('#runs-table')?.innerText.includes('interrupted')", timeout=30_000)
    field = page.locator("#runs-run input")
    field.fill(killed.name)
    field.press("Enter")
    page.locator("#runs-resume").click()
    page.wait_for_function("document.querySelector('#train-outcome')?.innerText.includes('interrupted') === false",
                           timeout=60_000)  # the Train tab now follows the resumed job

    def history_around_resume() -> tuple[list[dict], list[dict]]:
        text = (killed / "history.jsonl").read_text()
        cut = text.find("Resuming from step") if "Resuming from step" in text else len(text)
        before, after = text[:text.rfind("\n", 0, cut) + 1], text[cut:]
        return list(map(json.loads, before.splitlines())), list(map(json.loads, after.splitlines()[1:]))

    deadline = time.time() + 120
    while time.time() < deadline and not any(e["event"] == "step" for e in history_around_resume()[1]):
        time.sleep(0.1)
    before, after = history_around_resume()
    last_checkpoint = [e["step"] for e in before if e["event"] == "evaluation"][-1]
    assert [e["step"] for e in after if e["event"] == "step"][0] == last_checkpoint + 1
    page.locator("#stop-train").click()
    page.wait_for_function("document.querySelector('#train-outcome')?.innerText.includes('Stopped')", timeout=120_000)
    assert json.loads((killed / "status.json").read_text())["status"] == "cancelled"
    deadline = time.time() + 30  # the processes exit on their own after reporting
    while time.time() < deadline and (training_processes(killed) or training_processes(killed, launcher=True)):
        time.sleep(0.2)
    assert not training_processes(killed) and not training_processes(killed, launcher=True)


def test_monitor_tab_shows_a_shifted_stream_as_drifted_and_an_unshifted_one_as_fine(page, app, tiny_model_dir,
                                                                                     tmp_path, sample_cache):
    """Two request logs of one served run (written as the server writes them): tweets like its validation rows,
    and Chinese reviews; the Monitor tab calls the first fine and the second drifted."""
    import random

    from core.data.samples import build_sample
    from core.deploy.monitoring.monitor import Monitor
    from core.deploy.predict import Predictor
    from core.deploy.serve import plain
    from core.runs.config import TrainConfig
    from core.runs.run_folder import RunFolder
    from core.runs.store import RunStore
    from core.tasks import prepare_data
    from core.train.engine import TrainingJob

    config = TrainConfig(base_model=str(tiny_model_dir), epochs=1, batch_size=16, max_length=48, learning_rate=1e-3,
                         precision="fp32")
    job = TrainingJob(config, prepare_data("classification", build_sample("tweet_sentiment", rows_per_class=100, seed=4)),
                      RunStore(app.runs), data_name="tweets-served")
    job.run()
    predictor = Predictor(job.run_dir)
    validation = RunFolder(job.run_dir).predictions()["text"].tolist()
    streams = {str(tmp_path / "unshifted.db"): random.Random(1).choices(validation, k=80),
               None: build_sample("chinese_reviews", rows_per_class=40, seed=1)["text"].astype(str).tolist()}
    for database, texts in streams.items():  # None: the run's own monitor.db, which the dropdown lists
        monitor = Monitor(predictor, job.run_dir, database)
        predictions = predictor.predict(texts)
        monitor.record({"text": texts}, predictions, [plain(p) for p in predictions], latency_ms=12.0)
        monitor.log.flush()

    page.get_by_role("tab", name="Monitor").click()
    page.wait_for_function(f"document.querySelector('#monitor-run input')?.value == '{job.run_dir.name}'",
                           timeout=30_000)
    page.locator("#monitor-refresh").click()
    page.wait_for_function("document.querySelector('#monitor-state')?.dataset.drifted == 'true'", timeout=30_000)
    assert "Drift in the last 80 predictions" in page.locator("#monitor-summary").inner_text()
    assert "drifted" in page.locator("#monitor-checks-table").inner_text()
    page.locator("#monitor-traffic .plot-container").wait_for(timeout=30_000)
    page.locator("#monitor-mix .plot-container").wait_for(timeout=30_000)
    shot(page, "monitor-1-drifted")

    page.locator("#monitor-db textarea, #monitor-db input").first.fill(str(tmp_path / "unshifted.db"))
    page.locator("#monitor-refresh").click()
    page.wait_for_function("document.querySelector('#monitor-state')?.dataset.drifted == 'false'", timeout=30_000)
    assert "No drift" in page.locator("#monitor-summary").inner_text()
    assert "drifted" not in page.locator("#monitor-checks-table").inner_text()
    shot(page, "monitor-2-fine")

