"""Settings declared once: every TrainConfig field carries a declaration, validation enforces its bounds, the Train
tab's controls and the search space take theirs from it, and the CLI's flags are made from it."""
from __future__ import annotations

import argparse
import math
from dataclasses import asdict, fields

import gradio as gr
import pytest

from core.common.errors import ConfigError
from core.runs.config import PRESETS, SETTINGS, TrainConfig
from core.runs.settings import SEARCH_KINDS, SECTIONS, WIDGETS, Setting, add_flags, settings_from_args
from core.search import space as search_space

BOUNDED = [(name, declared) for name, declared in SETTINGS.items() if declared.low is not None or
           declared.high is not None]


def test_every_field_is_declared_and_its_declaration_is_well_formed():
    assert [f.name for f in fields(TrainConfig)] == list(SETTINGS)
    for f in fields(TrainConfig):
        declared = f.metadata.get("setting")
        assert isinstance(declared, Setting), f.name
        assert all(declared.label) and all(declared.info), f.name  # English and Chinese
        assert declared.widget in ("", *WIDGETS) and declared.section in SECTIONS, f.name
        assert declared.search in ("", *SEARCH_KINDS), f.name
        assert not declared.choice_labels or len(declared.choice_labels) == len(declared.choices), f.name
        assert declared.widget != "slider" or declared.step, f.name
        assert declared.problem(f.name, f.default) is None, f.name  # the default is valid
    TrainConfig().validate()
    for preset in PRESETS.values():
        TrainConfig(**preset).validate()


def _outside(value: float, declared_int: bool, direction: float) -> float:
    return value + direction if declared_int else math.nextafter(value, direction * math.inf)


@pytest.mark.parametrize("name,declared", BOUNDED, ids=[name for name, _ in BOUNDED])
def test_validate_enforces_every_declared_bound(name, declared):
    integer = isinstance(getattr(TrainConfig(), name), int)
    for bound, is_open, direction in ((declared.low, declared.low_open, -1), (declared.high, declared.high_open, 1)):
        if bound is None:
            continue
        kind = int if integer else float
        refused = [kind(bound)] if is_open else [kind(_outside(bound, integer, direction))]
        allowed = kind(_outside(bound, integer, -direction)) if is_open else kind(bound)
        TrainConfig(**{name: allowed}).validate()
        for value in refused:
            with pytest.raises(ConfigError, match=f"{name.replace('_', ' ')} must be {declared.range_text()}"):
                TrainConfig(**{name: value}).validate()
    if not integer:
        with pytest.raises(ConfigError, match=name.replace("_", " ")):
            TrainConfig(**{name: math.nan}).validate()


def test_choices_and_the_cross_field_check_are_enforced():
    with pytest.raises(ConfigError, match="precision must be one of auto, fp32, bf16"):
        TrainConfig(precision="fp8").validate()
    with pytest.raises(ConfigError, match="augment must be one of"):
        TrainConfig(augment="mixup").validate()
    with pytest.raises(ConfigError, match="LoRA or a linear probe"):
        TrainConfig(lora=True, linear_probe=True).validate()


def test_the_json_settings_are_exactly_the_declared_names():
    assert TrainConfig.from_dict(asdict(TrainConfig())) == TrainConfig()
    with pytest.raises(ConfigError, match="Unknown settings: colour. Known: task, base_model"):
        TrainConfig.from_dict({"colour": "red"})


def test_the_train_tab_builds_each_control_from_its_declaration():
    from ui.strings import SETTING_STRINGS, STRINGS
    from ui.train_settings import build_section, control_bounds, to_control, to_setting

    controls: dict = {}
    with gr.Blocks():
        for section in SECTIONS:
            build_section(section, controls, {"processes": 4})
    assert list(controls) == [name for name, declared in SETTINGS.items() if declared.widget]
    for name, control in controls.items():
        declared = SETTINGS[name]
        assert control.label.key == name and control.info.key == f"{name}_info"
        assert control.value == to_control(name, getattr(TrainConfig(), name)), name
        if declared.widget in ("slider", "number"):
            low, high = (control.minimum, control.maximum)
            step = declared.step if declared.widget == "slider" else 0
            expect_low = None if declared.low is None else (
                (math.log10(declared.low) if declared.log else declared.low) + (step if declared.low_open else 0))
            expect_high = None if declared.high is None else (
                (math.log10(declared.high) if declared.log else declared.high) - (step if declared.high_open else 0))
            assert (low, high) == (expect_low, 4 if name == "processes" else expect_high), name  # 4: the machine's
            assert (low, high) == control_bounds(declared) or name == "processes"
            for end in (low, high) if declared.widget == "slider" else ():  # a box's open end is refused by validate
                assert declared.problem(name, to_setting(name, end)) is None, (name, end)
        if declared.choices:
            assert [value for _, value in control.choices] == list(declared.choices), name
    assert not set(STRINGS) & set(SETTING_STRINGS)  # no setting's text hides a hand-written one
    assert SETTING_STRINGS["augment=eda"][0] == "swap / drop words (EDA)"


def test_the_search_space_is_declared_and_its_default_ranges_lie_within_the_bounds():
    searchable = {name for name, declared in SETTINGS.items() if declared.search}
    assert set(search_space.PARAMS) == searchable and set(search_space.DEFAULT_SEARCH) <= searchable
    for name, param in search_space.PARAMS.items():
        if name == "base_model":  # the models that read the data
            continue
        assert param.check(param.default) == tuple(param.default), name
        assert all(SETTINGS[name].problem(name, value) is None for value in param.default), name
    with pytest.raises(ConfigError, match="batch size must be between 1 and 4096"):
        search_space.SearchSettings(space={"batch_size": (8, 5000)}).checked()


def test_cli_flags_come_from_the_declarations():
    parser = argparse.ArgumentParser()
    add_flags(parser, TrainConfig)
    args = parser.parse_args(["--learning-rate", "3e-4", "--no-deduplicate", "--precision", "bf16", "--lora-rank",
                              "16", "--preference-beta", "0.5"])
    given = settings_from_args(args, TrainConfig)
    assert given == {"learning_rate": 3e-4, "deduplicate": False, "precision": "bf16", "lora_rank": 16,
                     "preference_beta": 0.5}
    assert TrainConfig.from_dict(given).validate().lora_rank == 16
    assert settings_from_args(parser.parse_args([]), TrainConfig) == {}
    with pytest.raises(SystemExit):
        parser.parse_args(["--precision", "fp8"])  # not a declared choice
    shown = parser.format_help()
    assert "between 1 and 4096" in shown and "preference task only" in shown
