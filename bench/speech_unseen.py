"""Speech on clips the app's own sample never used: ten spoken digits by another engine (flite's five voices),
changed by sox (pitch, tempo, reverb) with noise, at 8-44.1 kHz, mono and stereo, as WAV, FLAC, OGG and MP3.
Trains from the CLI with the app's defaults (2 seeds) and prints the fine-tune's and the classical baseline's
macro-F1. Needs flite and sox (apt-get install flite sox)."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile
import soxr

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
VOICES = ("kal", "kal16", "awb", "rms", "slt")
FORMATS = (("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_16"), ("ogg", "OGG", "VORBIS"),
           ("mp3", "MP3", "MPEG_LAYER_III"))
RATES = (8000, 16000, 22050, 44100)


def build(folder: Path, per_word: int = 30, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for word in WORDS:
        (folder / word).mkdir(parents=True, exist_ok=True)
        for n in range(per_word):
            raw, changed = folder / "raw.wav", folder / "changed.wav"
            subprocess.run(["flite", "-voice", VOICES[n % len(VOICES)], "-t", word, "-o", str(raw)], check=True)
            effects = ["pitch", str(int(rng.integers(-300, 300))), "tempo", f"{rng.uniform(0.8, 1.25):.2f}"]
            if rng.random() < 0.3:
                effects += ["reverb", str(int(rng.integers(20, 60)))]
            subprocess.run(["sox", str(raw), str(changed), *effects, "pad", f"{rng.uniform(0, 0.5):.2f}",
                            f"{rng.uniform(0, 0.3):.2f}"], check=True)
            samples, rate = soundfile.read(changed, dtype="float32")
            samples = samples.mean(axis=1) if samples.ndim > 1 else samples
            samples = samples + rng.standard_normal(len(samples)).astype(np.float32) * 10 ** (-rng.uniform(1.5, 3.5))
            target = int(rng.choice(RATES))
            samples = soxr.resample(samples, rate, target)
            if rng.random() < 0.3:
                samples = np.stack([samples, samples * 0.8], axis=1)
            suffix, kind, subtype = FORMATS[int(rng.integers(len(FORMATS)))]
            soundfile.write(folder / word / f"{n:03d}.{suffix}", np.clip(samples, -1, 1), target, format=kind,
                            subtype=subtype)
    (folder / "raw.wav").unlink()
    (folder / "changed.wav").unlink()
    return folder


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = build(Path(tmp) / "digits_spoken")
        for seed in (0, 1):
            runs = Path(tmp) / f"runs{seed}"
            subprocess.run([sys.executable, "-m", "core", "--runs", str(runs), "train", "--data", str(data),
                            "--seed", str(seed)], check=True, capture_output=True)
            metrics = json.loads(next(runs.glob("*/metrics.json")).read_text())
            print(f"seed {seed}: fine-tune macro-F1 {metrics['macro_f1']:.3f} vs classical "
                  f"{metrics['classical']['macro_f1']:.3f} ({metrics['train_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
