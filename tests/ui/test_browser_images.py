"""Images from headless Chromium, in an app of its own (no earlier run's threads share the CPU with the short
speed test): a zip of class folders uploaded, trained, evaluated and an uploaded image predicted."""
from __future__ import annotations

import re
import time

import pytest
from test_browser import (browser, check_estimate, classical_on_page, page, predicted_label,  # noqa: F401
                          settled_estimate, shot, wait_for_sample)

pytestmark = pytest.mark.browser


def test_images_zip_trains_beats_the_pixel_baseline_and_predicts_an_upload(page, tmp_path, sample_cache):
    """The digits sample as a zip of class folders: a grid per class, EfficientNet-Lite0 with a live curve, a
    held-out accuracy above logistic regression on pixels, the gallery of mistakes, an uploaded image predicted."""
    from PIL import Image
    from sklearn.datasets import load_digits

    from core.data.samples import sample_path

    wait_for_sample(page)
    page.locator("#data-upload input[type=file]").set_input_files(str(sample_path("digits")))
    page.wait_for_function("document.querySelector('#data-message')?.innerText.includes('digits.zip')",
                           timeout=120_000)
    assert "1,797 images kept" in page.locator("#data-message").inner_text()
    assert page.locator("#task input:checked").input_value() == "image_classification"
    page.wait_for_function("document.querySelectorAll('#data-images img').length >= 10", timeout=30_000)
    assert "(178)" in page.locator("#data-images").inner_text()  # captions: class and its count
    shot(page, "images-1-data")

    page.get_by_role("tab", name="Train").click()
    page.wait_for_function("document.querySelector('#base-model input')?.value.includes('EfficientNet')")
    estimated = settled_estimate(page)
    assert page.get_by_text("not in the list of choices").count() == 0  # no error toast while the model switched
    started = time.time()
    page.locator("#start-train").click()
    page.wait_for_function("document.querySelectorAll('#loss-curve .scatterlayer .trace path.js-line').length > 0",
                           timeout=120_000)
    shot(page, "images-2-training")
    page.wait_for_function("document.querySelector('#train-outcome')?.innerText.includes('Finished')", timeout=900_000)
    check_estimate("digits, 1,797 images, Balanced", estimated, started)
    outcome = page.locator("#train-outcome").inner_text()
    accuracy = float(re.search(r"accuracy ([0-9.]+)", outcome).group(1))
    classical = classical_on_page(page, "image_classification")
    print(f"\ndigits: accuracy {accuracy} vs logistic regression on pixels {classical}")
    assert accuracy > classical and "Beats the classical baseline" in outcome, outcome
    shot(page, "images-3-trained")

    page.get_by_role("tab", name="Evaluate").click()
    page.wait_for_function("document.querySelector('#eval-summary')?.innerText.includes('accuracy')", timeout=30_000)
    page.locator("#eval-confusion .plot-container").wait_for(timeout=30_000)
    page.wait_for_function("document.querySelectorAll('#eval-mistake-images img').length >= 1", timeout=30_000)
    assert "→" in page.locator("#eval-mistake-images").inner_text()
    shot(page, "images-4-evaluate")

    page.get_by_role("tab", name="Predict").click()
    page.locator("#predict-image-examples").wait_for(timeout=30_000)  # images of the run's validation split
    assert not page.locator("#predict-text").is_visible()
    seven = tmp_path / "seven.png"
    digits = load_digits()
    Image.fromarray((digits.images[digits.target == 7][-1] * 255 / 16).astype("uint8")).resize((32, 32)).save(seven)
    page.locator("#predict-image input[type=file]").set_input_files(str(seven))
    label, label_text = predicted_label(page)
    assert label == "7", label_text
    shot(page, "images-5-predict")
