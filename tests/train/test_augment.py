"""Augmentation of the training split: what each method makes, that targets stay true, that validation rows are
never touched, and that a method which does not fit the task is refused."""
from __future__ import annotations

import json
import random
from collections import Counter

import pandas as pd
import pytest

from core.common.errors import ConfigError
from core.data.samples import build_sample
from core.runs.config import TrainConfig
from core.runs.run_folder import RunFolder
from core.runs.store import RunStore
from core.tasks import check_config, get_task, prepare_data
from core.train.augment import augment, eda, synonyms
from core.train.engine import TrainingJob


def test_text_augmenters_change_a_few_words_in_english_and_chinese(sample_cache):
    rng = random.Random(0)
    english = "The delighted audience applauded the brilliant performance at the theatre"
    swapped = eda(english, rng)
    assert swapped != english and set(swapped.split()) <= set(english.split())
    replaced = synonyms(english, rng)
    changed = [(a, b) for a, b in zip(english.split(), replaced.split()) if a != b]
    assert replaced != english and len(replaced.split()) >= len(english.split()) - 1, replaced
    chinese = "这家酒店的服务非常好，房间也很干净，下次还会再来。"
    assert synonyms(chinese, rng) != chinese and eda(chinese, rng) != chinese
    print(f"\n{swapped}\n{replaced} {changed}")


def test_entity_swaps_keep_tags_aligned_and_types_true(sample_cache):
    task = get_task("token_classification")
    data = prepare_data("token_classification", build_sample("conll2003", rows_per_class=30, seed=1))
    more = augment(task, data, "entities", 2, seed=3)
    names = data.label_names
    originals = {}
    from seqeval.metrics.sequence_labeling import get_entities

    for words, tags in zip(data.inputs["tokens"], data.targets):
        for kind, a, b in get_entities([names[t] for t in tags]):
            originals.setdefault(kind, set()).add(tuple(words[a:b + 1]))
    new_rows = list(zip(more.inputs["tokens"][len(data):], more.targets[len(data):]))
    assert new_rows and any(w not in data.inputs["tokens"] for w, _ in new_rows)
    for words, tags in new_rows:
        assert len(words) == len(tags)
        for kind, a, b in get_entities([names[t] for t in tags]):
            assert tuple(words[a:b + 1]) in originals[kind]  # an entity of the same type from the training rows


def test_oversampling_balances_the_classes(sample_cache):
    frame = build_sample("tweet_sentiment", rows_per_class=30, seed=1)
    frame = pd.concat([frame[frame.label == label].head(n) for label, n in zip(sorted(frame.label.unique()), (30, 12, 5))])
    data = prepare_data("classification", frame)
    balanced = augment(get_task("classification"), data, "oversample", 1, seed=0)
    assert set(Counter(balanced.targets).values()) == {30}


def test_training_augments_the_training_split_only(tiny_model_dir, toy_csv, tmp_path):
    config = TrainConfig(base_model=str(tiny_model_dir), epochs=1, batch_size=8, max_length=32, learning_rate=1e-3,
                         precision="fp32", augment="eda", augment_copies=2)
    frame = pd.read_csv(toy_csv)
    job = TrainingJob(config, prepare_data("classification", frame), RunStore(tmp_path), data_name="toy")
    job.run()
    folder = RunFolder(job.run_dir)
    described = folder.data()
    assert described["train_rows"] == 3 * (len(frame) - described["val_rows"])
    assert set(folder.predictions()["text"]) <= set(frame["review"])  # validation rows are original rows
    assert "Augmented the training split (eda)" in (job.run_dir / "history.jsonl").read_text()
    assert json.loads((job.run_dir / "train_config.json").read_text())["augment"] == "eda"


def test_a_method_that_does_not_fit_the_task_is_refused():
    with pytest.raises(ConfigError, match="'entities' augmentation does not fit"):
        check_config(TrainConfig(augment="entities"))
    with pytest.raises(ConfigError, match="offered: entities"):
        check_config(TrainConfig(task="token_classification", augment="eda"))
