"""Sound clips from headless Chromium, in an app of its own: a zip of class folders of spoken commands uploaded,
heard in the Data tab, trained with the defaults, evaluated (with a learning curve), and an uploaded recording of
another voice predicted."""
from __future__ import annotations

import re
import subprocess
import time

import pytest
from test_browser import (browser, check_estimate, classical_on_page, page, predicted_label,  # noqa: F401
                          settled_estimate, shot, wait_for_sample)

pytestmark = pytest.mark.browser


def test_spoken_commands_zip_trains_beats_the_log_mel_baseline_and_predicts_an_upload(page, tmp_path, sample_cache):
    """The spoken-commands sample: players per class and a duration histogram, the speech encoder with a live
    curve, a held-out macro-F1 above logistic regression on log-mel statistics, an uploaded clip predicted."""
    from core.data.samples import sample_path

    wait_for_sample(page)
    page.locator("#data-upload input[type=file]").set_input_files(str(sample_path("spoken_commands")))
    page.wait_for_function("document.querySelector('#data-message')?.innerText.includes('spoken_commands.zip')",
                           timeout=120_000)
    message = page.locator("#data-message").inner_text()
    assert "400 sound clips kept" in message and "Cross-validation folds 5" in message, message  # a small table
    assert page.locator("#task input:checked").input_value() == "audio_classification"
    page.wait_for_function("document.querySelectorAll('#data-clips audio').length >= 30", timeout=30_000)
    assert "yes (40)" in page.locator("#data-clips").inner_text()  # captions: class and its count
    served = page.evaluate("fetch(document.querySelector('#data-clips audio').src).then(r => [r.status, "
                           "r.headers.get('content-type')])")
    assert served[0] == 200 and "audio" in served[1], served  # the player's file is served
    page.locator("#data-durations .plot-container").wait_for(timeout=30_000)
    shot(page, "audio-1-data")

    page.get_by_role("tab", name="Train").click()
    page.wait_for_function("document.querySelector('#base-model input')?.value.includes('speech')")
    estimated = settled_estimate(page)
    started = time.time()
    page.locator("#start-train").click()
    page.wait_for_function("document.querySelectorAll('#loss-curve .scatterlayer .trace path.js-line').length > 0",
                           timeout=120_000)
    shot(page, "audio-2-training")
    page.wait_for_function("document.querySelector('#train-outcome')?.innerText.includes('Finished')", timeout=900_000)
    check_estimate("spoken commands, 400 clips, Balanced", estimated, started)
    outcome = page.locator("#train-outcome").inner_text()
    f1 = float(re.search(r"macro-F1 ([0-9.]+)", outcome).group(1))
    classical = classical_on_page(page, "audio_classification")
    print(f"\nspoken commands: macro-F1 {f1} vs logistic regression on log-mel statistics {classical}")
    assert f1 > classical and "Beats the classical baseline" in outcome, outcome
    shot(page, "audio-3-trained")

    page.get_by_role("tab", name="Evaluate").click()
    page.wait_for_function("document.querySelector('#eval-summary')?.innerText.includes('accuracy')", timeout=30_000)
    page.locator("#eval-confusion .plot-container").wait_for(timeout=30_000)
    page.locator("#eval-more-labels").click()  # the learning curve: three more runs on shares of the rows
    page.wait_for_function("document.querySelector('#eval-curve-said')?.innerText.includes('rows')", timeout=600_000)
    said = page.locator("#eval-curve-said").inner_text()
    assert "macro-F1" in said and ("2x the rows" in said or "already perfect" in said), said
    page.locator("#eval-learning-curve .plot-container").wait_for(timeout=30_000)
    shot(page, "audio-4-evaluate")

    page.get_by_role("tab", name="Predict").click()
    page.locator("#predict-audio-examples").wait_for(timeout=30_000)  # clips of the run's validation split
    assert not page.locator("#predict-text").is_visible()
    spoken = tmp_path / "stop.wav"  # a voice and speed the sample's random draw may not hold
    subprocess.run(["espeak-ng", "-v", "en-us+f4", "-s", "150", "-w", str(spoken), "stop"], check=True)
    page.locator("#predict-audio input[type=file]").set_input_files(str(spoken))
    label, label_text = predicted_label(page)
    assert label == "stop", label_text
    shot(page, "audio-5-predict")
