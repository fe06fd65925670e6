"""Spoken-command samples synthesised by Debian's espeak-ng: many accents, voice variants, speeds and pitches, a
random pause before each word and background noise at a random level, so a model must learn the words rather than
one voice. Written as a zip of one folder per word, mixing WAV and FLAC files, as a user would bring them."""
from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np

from ..common.errors import DataError
from .sound import RATE

ENGLISH = {"words": ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"),
           "voices": ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
                      "en-029", "en-us-nyc")}
MANDARIN = {"words": ("开", "关", "上", "下", "左", "右", "停", "走", "是", "不"), "voices": ("cmn",)}
LABELS_ZH = {"开": "kai_open", "关": "guan_close", "上": "shang_up", "下": "xia_down", "左": "zuo_left",
             "右": "you_right", "停": "ting_stop", "走": "zou_go", "是": "shi_yes", "不": "bu_no"}
VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5", "+klatt",
            "+klatt2", "+klatt3")
CLIPS_PER_WORD = 40


def speak(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng's rendering of a word as 16 kHz floats."""
    import soundfile
    import soxr

    if shutil.which("espeak-ng") is None:
        raise DataError("The spoken-command samples are synthesised with espeak-ng, which is not installed. "
                        "Install it with `make speech` (Debian: apt-get install espeak-ng).")
    out = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
                         capture_output=True, check=True, timeout=30).stdout
    samples, rate = soundfile.read(io.BytesIO(out), dtype="float32")
    return soxr.resample(samples, rate, RATE).astype(np.float32)


def write_commands(path: Path, language: dict, labels: dict[str, str] | None = None, seed: int = 0) -> None:
    """A zip of CLIPS_PER_WORD clips per word: commands/<label>/<n>.wav (every third one FLAC)."""
    import soundfile

    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for word in language["words"]:
            for n in range(CLIPS_PER_WORD):
                voice = f"{rng.choice(language['voices'])}{rng.choice(VARIANTS)}"
                spoken = speak(word, voice, int(rng.integers(120, 220)), int(rng.integers(20, 80)))
                pause = np.zeros(int(rng.uniform(0.05, 0.4) * RATE), dtype=np.float32)
                clip = np.concatenate([pause, spoken, pause[: len(pause) // 2]]) * rng.uniform(0.2, 0.9)
                level = np.sqrt(np.mean(clip ** 2)) * 10 ** (-rng.uniform(10, 35) / 20)
                clip = np.clip(clip + rng.standard_normal(len(clip)).astype(np.float32) * level, -1, 1)
                kind = "FLAC" if n % 3 == 2 else "WAV"
                data = io.BytesIO()
                soundfile.write(data, clip, RATE, format=kind, subtype="PCM_16")
                label = (labels or {}).get(word, word)
                archive.writestr(f"commands/{label}/{n:03d}.{kind.lower()}", data.getvalue())


def english_commands(path: Path) -> None:
    write_commands(path, ENGLISH)


def mandarin_commands(path: Path) -> None:
    write_commands(path, MANDARIN, LABELS_ZH)
