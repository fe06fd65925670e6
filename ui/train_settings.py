"""The Train tab's setting controls, built from TrainConfig's declarations (order, widget, bounds, section, label and
help in the page's language), and the page's values read back as settings."""
from __future__ import annotations

import math

import gradio as gr

from core.runs.config import DEFAULT_TASK, PRESETS, SETTINGS, TrainConfig
from core.runs.settings import Setting
from core.tasks import TASKS, get_task

from .strings import t

LOCAL = "local folder…"
DEFAULTS = TrainConfig()
ELEM_IDS = {"learning_rate": "lr", "warmup_ratio": "warmup", "weight_decay": "decay", "val_fraction": "val-frac"}
PRESET_FIELDS = list(dict.fromkeys(name for preset in PRESETS.values() for name in preset))
SUGGESTED_FIELDS = list(dict.fromkeys(name for task in TASKS.values() for name in task.suggested))  # set per task
SPEED_FIELDS = [name for name, declared in SETTINGS.items() if declared.speed and declared.widget]


def elem_id(name: str) -> str:
    """The control's element id: the field's name with dashes (a few keep their shorter ids)."""
    return ELEM_IDS.get(name, name.replace("_", "-"))


def to_control(name: str, value):
    """A setting's value as its control shows it: a logarithmic control shows the power of ten."""
    return round(math.log10(value), 4) if SETTINGS[name].log else value


def to_setting(name: str, value):
    return float(f"{10 ** value:.4g}") if SETTINGS[name].log else value


def control_bounds(declared: Setting) -> tuple[float | None, float | None]:
    """The control's minimum and maximum: the declared bounds (as powers of ten on a logarithmic control); a slider
    stops one step inside an open bound."""
    low, high = ((math.log10(b) if declared.log else b) if b is not None else None for b in (declared.low, declared.high))
    if declared.widget == "slider":
        low = low + declared.step if declared.low_open else low
        high = high - declared.step if declared.high_open else high
    return low, high


def make_control(name: str, declared: Setting, maximum: float | None = None) -> gr.components.Component:
    """The control a declaration asks for, showing the default; ``maximum`` narrows the declared one (this
    machine's processes)."""
    value = to_control(name, getattr(DEFAULTS, name))
    common = dict(label=t(name), info=t(f"{name}_info"), elem_id=elem_id(name))
    low, high = control_bounds(declared)
    high = high if maximum is None else min(high, maximum)
    integer = isinstance(value, int) and not isinstance(value, bool)
    if declared.widget == "slider":
        return gr.Slider(low, high, value=value, step=declared.step, **common)
    if declared.widget == "number":
        return gr.Number(value, precision=0 if integer else None, minimum=low, maximum=high, step=declared.step or 1,
                         **common)
    if declared.widget == "checkbox":
        return gr.Checkbox(value, **common)
    choices = ([(t(f"{name}={choice}"), choice) for choice in declared.choices] if declared.choice_labels
               else list(declared.choices))
    if declared.widget == "radio":
        return gr.Radio(choices, value=value, **common)
    if declared.widget == "dropdown":
        return gr.Dropdown(choices, value=value, **common)
    return gr.Textbox(value, placeholder=declared.placeholder or None, **common)


def build_section(section: str, controls: dict, maximums: dict[str, float] | None = None) -> None:
    """A section's controls, a row per declared row name, into ``controls`` (field name -> control)."""
    rows: dict[str, list[str]] = {}
    for name, declared in SETTINGS.items():
        if declared.section == section and declared.widget:
            rows.setdefault(declared.row, []).append(name)
    for names in rows.values():
        with gr.Row():
            for name in names:
                controls[name] = make_control(name, SETTINGS[name], (maximums or {}).get(name))


def settings_from(names: list[str], values: list) -> dict:
    """The controls' values by TrainConfig field name, as settings."""
    return {name: to_setting(name, value) for name, value in zip(names, values)}


def page_settings(state: dict, model_key: str, path: str | None, names: list[str], values: list) -> dict:
    """The run the page describes: the Data tab's task, the chosen base model and every control by name."""
    base = (path or "").strip() if model_key == LOCAL else model_key
    return {**settings_from(names, values), "task": state.get("task", DEFAULT_TASK), "base_model": base}


def preset_values(preset: str, state: dict | None = None, fields: list[str] = PRESET_FIELDS) -> list:
    """The controls' values for a preset (fields it does not set go back to their defaults), with the suggestions
    of the loaded data's task (e.g. the learning rate images train with)."""
    suggested = get_task((state or {}).get("task", DEFAULT_TASK)).suggested
    return [to_control(name, suggested.get(name, PRESETS[preset].get(name, getattr(DEFAULTS, name))))
            for name in fields]
