"""Training configuration: one dataclass shared by the UI, the CLI and the engine; each field declares its valid
values, control, help and search range once (core.runs.settings)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..common.errors import ConfigError
from ..models.registry import DEFAULT_MODEL
from .settings import declarations, setting

PRECISIONS = ("auto", "fp32", "bf16")
AUGMENTATIONS = ("off", "eda", "synonyms", "entities", "oversample", "crops", "crops_flips", "sound")  # core.train.augment
BATCH_AUGMENTATIONS = ("crops", "crops_flips", "sound")  # images: new random crops (and mirror images) in every
# batch; sound clips: new gain, shift, speed and noise in every batch
COPYING_AUGMENTATIONS = ("eda", "synonyms", "entities")  # add augment_copies new rows per training row (at most)
PREFERENCE_LOSSES = ("dpo", "orpo")  # of the preference task (core/tasks/preference.py)
DEFAULT_TASK = "classification"  # what a table is trained for when nothing else is known
FEW_SHOT_MODES = ("auto", "on", "off")  # core/train/few_shot.py
FEW_SHOT_ROWS = 32  # auto: the few-shot mode below this many training rows per class (the median class); at 32 the
# plain fine-tune led on Chinese reviews and the mode took 9-13x its time (bench/RESULTS.md, few-shot)


@dataclass
class TrainConfig:
    """Hyperparameters of one fine-tuning run, each declared once (core.runs.settings): in the Train tab's order."""

    task: str = setting(DEFAULT_TASK, ("Task", "任务"), (  # a name from core.tasks.TASKS (checked there)
        "Picked from the data when you upload it; change it if the guess is wrong", "上传数据时自动识别；识别错了可以更改"),
        section="basic", speed=True)
    base_model: str = setting(DEFAULT_MODEL, ("Base model", "基础模型"), (
        "The pretrained model to fine-tune; picked for your data's language when you upload it",
        "要微调的预训练模型；上传数据时按语言自动选择"),
        section="basic", speed=True, search="choice")  # searched among the models that read the data
    learning_rate: float = setting(1e-4, ("Learning rate (log10)", "学习率（log10）"), (
        "How big each update is (-4 means 1e-4); lower it if the loss jumps around, raise it if it barely moves",
        "每次更新的幅度（-4 表示 1e-4）；损失大幅波动就调低，几乎不降就调高"),
        low=1e-9, high=1, widget="slider", step=0.01, log=True, row="schedule", search="log", search_range=(1e-5, 1e-3))
    epochs: float = setting(0.0, ("Epochs (0: from the table's size)", "训练轮数（0：按数据量决定）"), (
        "0 trains small tables for at least the minimum steps (3 to 20 epochs)", "0：小数据至少训练最少步数（3 到 20 轮）"),
        low=0, high=1000, widget="number", step=0.1, row="schedule", speed=True, search="int", search_range=(1, 20))
    min_steps: int = setting(300, ("Minimum optimizer steps", "最少优化步数"), (
        "With epochs 0: a small table repeats until this many steps", "训练轮数为 0 时：小数据重复训练直到这么多步"),
        low=0, high=1_000_000, widget="number", row="schedule", speed=True)
    batch_size: int = setting(16, ("Batch size", "批大小"), (
        "Rows per optimizer step; larger is smoother but needs more memory", "每个优化步使用的行数；越大越平稳，但需要更多内存"),
        low=1, high=4096, widget="number", row="schedule", speed=True, search="choice", search_range=(8, 16, 32))
    max_length: int = setting(128, ("Max length (tokens)", "最大长度（词元）"), (
        "Longer texts are cut to this many tokens; longer is slower", "超过这么多词元的文本会被截断；越长越慢"),
        low=8, high=8192, widget="number", step=8, row="schedule", speed=True, search="choice",
        search_range=(64, 128, 256))
    warmup_ratio: float = setting(0.1, ("Warmup ratio", "预热比例"), (
        "Share of the steps over which the learning rate rises from 0; keeps the first steps gentle",
        "学习率从 0 逐渐升高所占的步数比例；让最初几步更平稳"),
        low=0, high=0.5, widget="slider", step=0.01, row="split", search="float", search_range=(0.0, 0.2))
    weight_decay: float = setting(0.01, ("Weight decay", "权重衰减"), (
        "Pulls weights gently towards 0 against overfitting; rarely worth changing", "把权重轻微拉向 0 以防过拟合；一般不用改"),
        low=0, high=0.3, widget="slider", step=0.01, row="split")
    val_fraction: float = setting(0.2, ("Validation fraction", "验证集比例"), (
        "Rows held out to score the model, never trained on", "留出用于评分、从不参与训练的行的比例"),
        low=0, high=0.5, low_open=True, widget="slider", step=0.01, row="split", speed=True)
    train_share: float = setting(1.0, ("Share of the training rows used", "使用的训练行比例"), (  # learning curves
        "Below 1 trains on a seeded, class-balanced share of the training split (the validation rows stay the same)",
        "小于 1 时只用训练集中按类别分层、固定种子抽取的一部分（验证集不变）"),
        low=0, high=1, low_open=True, widget="slider", step=0.05, row="split", speed=True)
    folds: int = setting(1, ("Cross-validation folds", "交叉验证折数"), (  # core.train.crossval
        "1: one validation split; 2-10: one run per fold, each holding out other rows; the score is their mean and "
        "spread", "1：一次划分；2-10：每折训练一次，每次留出不同的行；分数取各折的平均值与波动"),
        low=1, high=10, widget="number", row="split", speed=True)
    fold: int = setting(0, ("Held-out fold", "留出的折"), (
        "The fold this run holds out (cross-validation sets it)", "本次运行留出的折（交叉验证自动设置）"), low=0, high=9)
    seed: int = setting(42, ("Seed", "随机种子"), (
        "Same seed and settings: the same split and the same run", "相同种子和设置：相同的划分与结果"),
        low=0, high=2**32 - 1, widget="number", row="split")
    precision: str = setting("auto", ("Precision", "精度"), (
        "auto uses bf16 where the hardware runs it fast, else fp32", "auto：硬件支持时用 bf16，否则用 fp32"),
        choices=PRECISIONS, widget="radio", row="split", speed=True)
    deduplicate: bool = setting(True, ("Deduplicate before splitting", "划分前去重"), (  # before the split: no leak
        "Drop exact copies so none leaks into validation", "删除完全重复的行，避免泄漏到验证集"),
        widget="checkbox", row="switches")
    group_by_length: bool = setting(True, ("Group batches by length", "按长度分组批次"), (  # SmolLM2 1.9x faster
        "Less padding, faster; off: each batch mixes lengths (slightly lower loss per example seen)",
        "减少填充、更快；关闭则每批混合长度（同样样本数下损失略低）"),
        widget="checkbox", row="switches", speed=True)
    freeze_embeddings: bool = setting(True, ("Freeze the input layers", "冻结输入层"), (  # of full fine-tuning
        "Faster full fine-tuning; the word embeddings (speech: the lowest convolutions) stay as pretrained",
        "全量微调更快；词嵌入（语音：最底层卷积）保持预训练值"),
        widget="checkbox", row="switches", speed=True)
    attention_dropout: float = setting(0.0, ("Attention dropout", "注意力 Dropout"), (
        "0 trains faster: no random mask over every attention head", "0 训练更快：无需为每个注意力头生成随机掩码"),
        low=0, high=0.5, widget="slider", step=0.05, row="model", speed=True)
    hidden_dropout: float = setting(0.1, ("Hidden dropout", "隐藏层 Dropout"), (  # BERT's own rate
        "Randomly zeroes hidden values while training, against overfitting", "训练时随机置零部分隐藏值，防止过拟合"),
        low=0, high=0.5, widget="slider", step=0.05, row="model", speed=True, search="float", search_range=(0.0, 0.3))
    linear_probe: bool = setting(False, ("Linear probe (train only the new output layer)", "线性探测（只训练新的输出层）"), (
        "Much faster; the pretrained body stays frozen. A quick baseline, usually less accurate",
        "快得多；预训练主体保持冻结。是快速的基线，通常准确率较低"),
        widget="checkbox", row="model", speed=True)
    keep_layers: int = setting(0, ("Keep bottom layers (prune)", "保留底部层数（剪枝）"), (
        "0 keeps all; fewer layers predict faster (see bench/RESULTS.md)", "0 表示全部保留；层数越少预测越快"),
        low=0, high=48, widget="slider", step=1, row="model", speed=True, search="int", search_range=(2, 6))
    processes: int = setting(1, ("Training processes (data-parallel)", "训练进程数（数据并行）"), (
        "One per GPU, or CPU processes sharing the cores; batch size is per process, so the global batch is "
        "batch size x processes", "每块 GPU 一个进程，或共享 CPU 核心的进程；批大小按进程计，全局批大小 = 批大小 × 进程数"),
        low=1, high=64, widget="slider", step=1, row="model", speed=True)
    eval_every_steps: int = setting(0, ("Evaluate every N steps", "每 N 步评估一次"), (
        "0: about 5 evaluations per run, at least one per epoch", "0：每次训练约 5 次评估，每轮至少一次"),
        low=0, widget="number", row="evaluation", speed=True)
    early_stopping_patience: int = setting(3, ("Early-stopping patience", "早停耐心值"), (  # by the primary metric
        "Evaluations without a gain before the run stops; 0 never stops early", "主要指标连续多少次评估没有提升就停止；0 表示不早停"),
        low=0, widget="number", row="evaluation")
    max_grad_norm: float = setting(1.0, ("Gradient clipping (max norm)", "梯度裁剪（最大范数）"), (
        "Gradients are scaled down to this norm at each step", "每一步把梯度缩放到不超过这个范数"),
        low=0, widget="number", row="evaluation")
    max_steps: int = setting(0, ("Max optimizer steps", "最多优化步数"), (
        "0: from the epochs; above 0 ends the run after that many steps", "0：由训练轮数决定；大于 0 时训练到这么多步就结束"),
        low=0, widget="number", row="evaluation", speed=True)
    head_lr_scale: float = setting(1.0, ("Head learning-rate multiple", "输出层学习率倍数"), (
        "The newly initialised head learns at this multiple of the learning rate", "新初始化的输出层以学习率的这个倍数训练"),
        low=0, high=1000, low_open=True, widget="number", row="evaluation", search="log", search_range=(1.0, 50.0))
    augment: str = setting("off", ("Augment the training split", "增强训练集"), (  # core.train.augment
        "New rows made from the training rows (never the validation rows); measured in bench/RESULTS.md",
        "由训练行生成新行（不动验证集）；效果见 bench/RESULTS.md"),
        choices=AUGMENTATIONS, choice_labels=(
            ("off", "关闭"), ("swap / drop words (EDA)", "随机交换 / 删除词（EDA）"),
            ("synonyms (WordNet, Cilin)", "同义词替换（WordNet、同义词词林）"), ("swap entities of a type (NER)", "同类实体替换（NER）"),
            ("oversample rare classes", "少数类过采样"), ("images: random crops in every batch", "图片：每批随机裁剪"),
            ("images: random crops and mirror images", "图片：随机裁剪和镜像翻转"),
            ("sound: gain, shift, speed and noise in every batch", "声音：每批随机音量、平移、语速和噪声")),
        widget="dropdown", row="extras", speed=True)
    augment_copies: int = setting(1, ("New rows per training row", "每行生成的新行数"), (  # eda, synonyms, entities
        "How many new rows each training row gives", "每个训练行生成几个新行"),
        low=1, high=10, widget="number", row="extras", speed=True)
    few_shot: str = setting("auto", ("Few-shot mode (SetFit)", "小样本模式（SetFit）"), (  # core/train/few_shot.py
        f"auto: on under {FEW_SHOT_ROWS} training rows per class with a sentence encoder; trains on pairs of rows, "
        "then fits a logistic-regression head", f"auto：每类训练行少于 {FEW_SHOT_ROWS} 且基础模型是句向量编码器时开启；"
        "先用成对的行训练，再拟合逻辑回归输出层"),
        choices=FEW_SHOT_MODES, choice_labels=(("auto", "自动"), ("on", "开启"), ("off", "关闭")), widget="radio",
        row="extras", speed=True, task="classification")
    preference_loss: str = setting("dpo", (
        "Preference loss (prompt / chosen / rejected tables)", "偏好损失（提示 / 更好 / 更差 表格）"), (
        "DPO compares with the starting model; ORPO needs none and also learns the chosen answers",
        "DPO 与初始模型比较；ORPO 无需参考模型，并同时学习更好的回答"),
        choices=PREFERENCE_LOSSES, choice_labels=(("DPO", "DPO"), ("ORPO", "ORPO")), widget="dropdown", row="extras",
        speed=True, task="preference")
    preference_beta: float = setting(0.1, ("Preference beta", "偏好 beta"), (
        "DPO: higher stays closer to the starting model; ORPO: weight of the preference term",
        "DPO：越大越接近初始模型；ORPO：偏好项的权重"),
        low=0, high=10, low_open=True, widget="number", row="extras", task="preference")
    mlflow: str = setting("", ("Log to MLflow", "记录到 MLflow"), (  # core.runs.mlflow_log
        "Empty: off · local: runs/mlflow.db · or a tracking URI (sqlite:///…, http://…)",
        "留空：关闭 · local：runs/mlflow.db · 或跟踪地址（sqlite:///…、http://…）"),
        widget="text", placeholder="local", row="extras")
    lora: bool = setting(False, ("Use LoRA", "使用 LoRA"), (  # peft adapters instead of every weight
        "Trains far fewer weights: faster and smaller runs, mostly for large models", "只训练很少的权重：更快、更小，主要用于大模型"),
        widget="checkbox", section="lora", row="lora", speed=True, search="choice", search_range=(False, True))
    lora_rank: int = setting(8, ("Rank", "秩"), (
        "Size of each adapter; higher learns more and is slower", "每个适配器的大小；越大学得越多、越慢"),
        low=1, high=256, widget="slider", step=1, section="lora", row="lora", speed=True, search="choice",
        search_range=(4, 8, 16))
    lora_alpha: int = setting(16, ("Alpha", "Alpha"), (
        "Scales the adapters' updates; usually twice the rank", "适配器更新的缩放；通常是秩的两倍"),
        low=1, high=512, widget="slider", step=1, section="lora", row="lora")
    lora_dropout: float = setting(0.0, ("Dropout", "Dropout"), (  # LLaMA-Factory's: a copy per layer, -20% rows/s
        "Dropout on the adapters' input; 0 is faster", "适配器输入上的 Dropout；0 更快"),
        low=0, high=0.5, widget="slider", step=0.01, section="lora", row="lora", speed=True)
    lora_layers: int = setting(0, ("Top layers with adapters", "加适配器的顶部层数"), (
        "0 = every layer; fewer layers train faster (no backward pass below them)", "0 = 所有层；层数越少训练越快（其下各层不做反向传播）"),
        low=0, high=48, widget="slider", step=1, section="lora", row="lora", speed=True)

    def validate(self) -> "TrainConfig":
        """Refuse a setting outside its declaration, or two that exclude each other (what the task itself refuses is
        checked by ``core.tasks.check_config``)."""
        problems = [p for name, declared in SETTINGS.items() if (p := declared.problem(name, getattr(self, name)))]
        if self.lora and self.linear_probe:
            problems.append("choose LoRA or a linear probe, not both")
        if self.fold >= self.folds and self.folds > 1:
            problems.append(f"fold must be below folds ({self.folds}), counting from 0 (got {self.fold})")
        if problems:
            raise ConfigError(f"Invalid setting: {problems[0]}.")
        return self

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """Settings by name, each converted to its field's type (a slider's 16.0 is the int 16; "1e-4" from
        JSON is the float); unknown names and values of the wrong kind are refused with a message."""
        kinds = {f.name: type(f.default) for f in fields(cls)}
        unknown = set(data) - set(kinds)
        if unknown:
            raise ConfigError(f"Unknown settings: {', '.join(sorted(unknown))}. Known: {', '.join(SETTINGS)}.")
        return cls(**{name: _coerce(name, value, kinds[name]) for name, value in data.items()})

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        return cls.from_dict(json.loads(text))

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        return cls.from_json(Path(path).read_text(encoding="utf-8"))


def _coerce(name: str, value, kind: type):
    """``value`` as ``kind`` (bool, int, float or str), or a ConfigError naming the setting."""
    try:
        if kind is bool:
            if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.strip().lower() in ("true", "1", "yes")
            if isinstance(value, (bool, int)) and value in (0, 1):
                return bool(value)
        elif kind is int and not isinstance(value, (list, dict)):
            number = float(value)
            if number.is_integer():
                return int(number)
        elif kind is float and not isinstance(value, (list, dict, bool)):
            return float(value)
        elif kind is str and isinstance(value, str):
            return value
    except (TypeError, ValueError, OverflowError):
        pass
    shown = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}[kind]
    raise ConfigError(f"Invalid setting: {name.replace('_', ' ')} must be {shown} (got {value!r:.60}).")


SETTINGS = declarations(TrainConfig)  # name -> its declaration, in the fields' order

PRESETS: dict[str, dict] = {  # time budgets: one pass; enough steps for the table; twice those steps, longer texts
    "Fast": dict(epochs=1.0, min_steps=0, batch_size=16, max_length=64, learning_rate=3e-4, hidden_dropout=0.0),
    "Balanced": dict(epochs=0.0, min_steps=300, batch_size=16, max_length=128, learning_rate=1e-4),
    "Accurate": dict(epochs=0.0, min_steps=600, batch_size=16, max_length=256, learning_rate=5e-5),
}
