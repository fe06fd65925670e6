"""The training engine: fine-tunes a base model in a background thread and publishes events."""
from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import threading
import time
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import AutoConfig, get_linear_schedule_with_warmup
from transformers import logging as hf_logging
from transformers import set_seed
from safetensors.torch import load_file, save_file

from . import events as ev
from .config import TrainConfig
from .language import unknown_share, unknown_token_warning
from .dropout import use_fast_dropout
from .errors import ModelError, StudioError
from .lora import apply_lora
from .parallel import PeerLost, SingleProcess
from .models import REGISTRY, load_tokenizer, resolve_model_path
from .classical import classical_result, start_classical
from .insight import save_outputs
from .schedule import plan_schedule
from .quality import deduplicate
from .tasks import get_task
from .tasks.base import Encoded, Task, TaskData
from .store import CANCELLED, FAILED, FINISHED, INTERRUPTED, RUNNING, RunStore, read_json, write_csv_atomic, write_json_atomic

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_fast_bf16() -> bool:
    """AMX tiles or AVX512-BF16: bf16 matmuls run several times faster than fp32."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' picks bf16 where the hardware runs it fast (AMX/AVX512-BF16 CPUs, bf16 GPUs), else fp32."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_fast_bf16() else "fp32"


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def length_grouped_batches(lengths: list[int], batch_size: int, generator: torch.Generator,
                           group: bool = True) -> list[list[int]]:
    """Shuffle, sort by length inside mega-batches of 50 batches, then shuffle batch order. ``group=False``:
    plain shuffled batches (more padding, but each batch mixes lengths)."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    mega = batch_size * (50 if group else 1)
    batches = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start:start + mega], key=lambda i: lengths[i], reverse=True)
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]


RESUME_DIR = "resume"


def has_resume_checkpoint(run_dir: Path) -> bool:
    return (run_dir / RESUME_DIR / "state.pt").is_file()


def free_memory_bytes(device: torch.device) -> int:
    """Memory a new allocation can get: on Linux MemAvailable, which counts the page cache the kernel gives
    back (MemFree does not: after reading a few GB of files it says 1 GB of 24 is free)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    with contextlib.suppress(OSError, StopIteration, ValueError):
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            return int(next(line for line in meminfo if line.startswith("MemAvailable:")).split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(model_config, batch_size: int, seq_len: int, device: torch.device) -> None:
    """Refuse settings whose activations cannot fit (Korthikanti et al. estimate, fp32, x2 headroom)."""
    hidden = getattr(model_config, "hidden_size", 768)
    heads = getattr(model_config, "num_attention_heads", 12)
    layers = getattr(model_config, "num_hidden_layers", 12)
    per_layer = seq_len * batch_size * hidden * (34 + 5 * heads * seq_len / hidden) * 2
    needed, free = per_layer * layers * 2, free_memory_bytes(device)
    if needed > free:
        raise StudioError(f"Batch size {batch_size} with sequences of {seq_len} tokens needs about "
                          f"{needed / 2**30:.0f} GB of memory, but only {free / 2**30:.0f} GB is free. "
                          "Lower the batch size or the max length.")


@dataclass
class LoopState:
    """Where the training loop stands; saved with every resume checkpoint."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    seen: int = 0
    elapsed: float = 0.0
    bad_evals: int = 0
    total: int = 0
    best: dict | None = None


def training_tokenizer(base_model: str):
    """A private copy of the base model's tokenizer (the cached one is shared), with a pad token."""
    tokenizer = copy.deepcopy(load_tokenizer(base_model))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout", "attn_pdrop")
HIDDEN_DROPOUT_KEYS = ("hidden_dropout_prob", "hidden_dropout", "dropout", "resid_pdrop", "embd_pdrop")


def training_overrides(path: Path, config: TrainConfig, device: torch.device) -> dict:
    """``from_pretrained`` keywords for training: the run's dropout rates under whichever names the
    architecture uses and, on the CPU, the plain ("eager") attention, which trains faster there than
    PyTorch's fused kernel with its slow CPU backward (BERT at 128 tokens, attention dropout 0: 0.42 ->
    0.27 s a step). GPUs keep transformers' default kernel."""
    names = AutoConfig.from_pretrained(path, local_files_only=True).to_dict()
    overrides = {key: config.attention_dropout for key in ATTENTION_DROPOUT_KEYS if key in names}
    overrides |= {key: config.hidden_dropout for key in HIDDEN_DROPOUT_KEYS if key in names}
    return {**overrides, "attn_implementation": "eager"} if device.type == "cpu" else overrides


def keep_bottom_layers(model, keep: int) -> None:
    """Structured pruning: drop the transformer layers above the bottom ``keep`` (0 or more than the model
    has: keep all). Fewer layers run in every forward pass; fine-tuning recovers what the top ones did."""
    count = model.config.num_hidden_layers
    if not keep or keep >= count:
        return
    stack = next(m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == count)
    del stack[keep:]
    model.config.num_hidden_layers = keep
    if isinstance(getattr(model.config, "layer_types", None), list):
        model.config.layer_types = model.config.layer_types[:keep]


def freeze_token_embeddings(model) -> None:
    """Keep the token-embedding matrix as pretrained unless an output layer shares it (a tied LM head).

    AdamW and gradient clipping then skip vocabulary x hidden weights (half of MiniLM's parameters)
    whose rows a batch barely touches.
    """
    embeddings = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    if output is None or output.weight is not embeddings:
        embeddings.requires_grad_(False)


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights training changes: a resume checkpoint needs no more, since the frozen rest is reloaded
    from the base model (multilingual-e5-small: 85 MB instead of 471 MB per evaluation)."""
    return {name: param.detach().contiguous() for name, param in model.named_parameters() if param.requires_grad}


def make_optimizer(model: torch.nn.Module, config: TrainConfig, new: set[str] = frozenset()) -> torch.optim.Optimizer:
    """AdamW without weight decay on biases and LayerNorm weights; the newly initialised weights ``new`` (the
    task's head) learn at ``head_lr_scale`` times the learning rate."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups.setdefault((param.ndim >= 2, name in new), []).append(param)
    groups = [{"params": params, "weight_decay": config.weight_decay if decayed else 0.0,
               "lr": config.learning_rate * (config.head_lr_scale if head else 1.0)}
              for (decayed, head), params in groups.items()]
    try:
        return torch.optim.AdamW(groups, lr=config.learning_rate, fused=True)
    except RuntimeError:  # torch < 2.4 has no fused AdamW on the CPU
        return torch.optim.AdamW(groups, lr=config.learning_rate)


class Cancelled(Exception):
    """Raised inside the training thread when the user pressed Stop."""


class TrainingJob:
    """One fine-tuning run of any task. ``start()`` runs it in a thread; read ``events`` for progress.

    The loop, resume, cancel, checkpoints and events are the same for every task; what differs (data,
    head, encoding, metrics and which of them decides the best checkpoint) comes from ``self.task``.
    """

    def __init__(self, config: TrainConfig, data: TaskData, store: RunStore | None = None,
                 data_name: str = "data", owner: str | None = None, parallel: SingleProcess | None = None):
        self.config = config
        self.parallel = parallel or SingleProcess()
        self.task: Task = get_task(config.task)
        self.owner = owner
        self.data = data
        self.data_name = data_name
        self.store = store or RunStore()
        self.events = ev.EventLog()
        self.run_dir: Path | None = None
        self.model = self.tokenizer = self.device = self.precision = self.val = None
        self.task_state: dict = {}
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._best: dict | None = None
        self._baseline: dict | None = None
        self._classical: dict | None = None  # fitted on the training split in a thread beside the first steps
        self._classical_job: Future | None = None
        self._started = time.time()
        self._samples_per_s: float | None = None
        self._folder: Path | None = None  # an existing run folder this job continues or was prepared in
        self._resuming = False
        self._val_enc: Encoded | None = None  # validation rows are tokenised at the first evaluation
        self._max_length = 0

    @classmethod
    def resume(cls, run_dir: str | Path, store: RunStore | None = None) -> "TrainingJob":
        """A job that continues an interrupted run from its last resume checkpoint, in the same folder."""
        run_dir = Path(run_dir)
        if not has_resume_checkpoint(run_dir):
            raise ModelError(f"The run '{run_dir.name}' has no checkpoint to resume from.")
        return cls.from_folder(run_dir, store)

    @classmethod
    def from_folder(cls, run_dir: Path, store: RunStore | None = None,
                    parallel: SingleProcess | None = None) -> "TrainingJob":
        """The job a run folder describes (train_config.json, data.json, dataset.csv): it trains in that folder
        and continues from its resume checkpoint when there is one."""
        run_dir = Path(run_dir).expanduser().resolve()
        meta = read_json(run_dir / "data.json", {})
        config = TrainConfig.load(run_dir / "train_config.json")
        task = get_task(config.task)
        frame = pd.read_csv(run_dir / "dataset.csv", dtype=str, keep_default_na=False)
        data = task.prepare(frame, {role.name: role.name for role in task.roles})
        data.columns = meta.get("columns") or data.columns
        data.rows_total, data.rows_dropped = meta["rows_total"], meta["rows_dropped"]
        job = cls(config, data, store or RunStore(run_dir.parent), data_name=meta["name"], parallel=parallel)
        job._folder, job._resuming = run_dir, has_resume_checkpoint(run_dir)
        return job

    # -- control -----------------------------------------------------------
    def start(self) -> "TrainingJob":
        self._thread = threading.Thread(target=self.run, name="sft-train", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread:
            self._thread.join(timeout)

    @property
    def done(self) -> bool:
        return self.events.done

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def resuming(self) -> bool:
        """Whether the job continues its run folder's resume checkpoint."""
        return self._resuming

    def check_cancel(self) -> None:
        """Raise Cancelled if Stop was pressed. In a process group only process 0 stops here; the training
        loop stops all of them together at a step boundary."""
        if self._cancel.is_set() and self.parallel.main:
            raise Cancelled()

    def autocast(self):
        return autocast(self.device, self.precision)

    # -- the run -----------------------------------------------------------
    def run(self) -> None:
        """Run synchronously; every outcome ends in a Finished, Failed or Cancelled event."""
        try:
            self.check_cancel()
            self.config.validate()
            self._open_run_dir()
            if self.config.processes > 1 and not self.parallel.distributed:
                from .launch import train_in_processes

                train_in_processes(self)  # worker processes train; their events are republished here
                return
            if self.parallel.main:
                self.events.subscribe(self._append_history)
            self._train()
        except Cancelled:
            self._finish_cancelled()
        except PeerLost:
            self.mark_interrupted("Another training process stopped before the run finished.")
        except StudioError as exc:
            self._fail(exc.message)
        except (torch.OutOfMemoryError, MemoryError):
            self._fail("Out of memory. Lower the batch size or the max length and try again.")
        except OSError as exc:
            self._fail(f"Could not write to the runs folder ({exc.strerror or exc}: {exc.filename or self.store.root}). "
                       "Free some disk space or choose a writable folder.")
        except Exception as exc:  # the message reaches the user; the run folder keeps the history
            self._fail(f"Training failed: {type(exc).__name__}: {exc}")

    def prepare_folder(self) -> Path:
        """Create the run folder with what worker processes rebuild the job from (its config and data), for
        ``accelerate launch -m core.worker RUN_DIR`` started by hand, e.g. on several machines."""
        self._open_run_dir()
        self.save_dataset()
        return self.run_dir

    def _open_run_dir(self) -> None:
        if self._folder:  # resuming, or a worker process in the folder the app prepared
            self.run_dir = self._folder
            if self.parallel.main:
                self.store.set_status(self.run_dir, RUNNING)  # keeps the owner already recorded
        else:
            self.run_dir = self.store.create(f"{self.data_name}-{Path(self.config.base_model).name}")
            self.config.save(self.run_dir / "train_config.json")
            self.store.set_status(self.run_dir, RUNNING, owner=self.owner)

    def _append_history(self, event: ev.Event) -> None:
        with contextlib.suppress(OSError):  # a full disk fails the run through its own save, not here
            with open(self.run_dir / "history.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")

    def _fail(self, message: str) -> None:
        if not self.parallel.main:  # process 0 reports the run's outcome; the others leave a line in the log
            print(f"Process {self.parallel.rank}: {message}", flush=True)
            return
        if self.run_dir:
            with contextlib.suppress(OSError):
                self.store.set_status(self.run_dir, FAILED, message=message)
        self.events.publish(ev.Failed(message))

    def mark_interrupted(self, cause: str) -> None:
        """A training process died: the run stays resumable from its last checkpoint (failed if it has none)."""
        if not self.parallel.main:
            return
        resumable = has_resume_checkpoint(self.run_dir)
        message = cause + (" The run is kept as interrupted: resume it from its last checkpoint." if resumable
                           else " No checkpoint was saved yet; start the run again.")
        self.store.set_status(self.run_dir, INTERRUPTED if resumable else FAILED, message=message)
        self.events.publish(ev.Failed(message))

    def _finish_cancelled(self) -> None:
        metrics = {}
        if self.run_dir and self.parallel.main:
            if self._best is None and self.model is not None:
                self._save_checkpoint()
            metrics = self._write_metrics()
            self.store.set_status(self.run_dir, CANCELLED)
        self.events.publish(ev.Cancelled(str(self.run_dir or ""), metrics))

    def _train(self) -> None:
        cfg, data, task = self.config, self.data, self.task
        spec = REGISTRY.get(cfg.base_model)
        first_use = " (first use: converting it once, about a minute)" if spec and spec.needs_conversion else ""
        self.events.publish(ev.Status(f"Loading the base model{first_use}"))
        set_seed(cfg.seed)
        self.device = self.parallel.device or pick_device()
        self.precision = resolve_precision(cfg.precision, self.device)
        split_warnings = []
        if cfg.deduplicate:
            data, dropped = deduplicate(data)
            if dropped:
                split_warnings.append(f"Dropped {dropped:,} exact duplicate row(s) before the split.")
        train, self.val = task.split(data, cfg.val_fraction, cfg.seed)
        self.task_state = task.fit(train)
        tokenizer, model, new_weights = self._load_model()
        if self.device.type == "cpu":
            use_fast_dropout(model)
        self.check_cancel()
        self.tokenizer, self.model = tokenizer, model.to(self.device)
        if self.parallel.main:
            if not self._resuming:
                self.save_dataset(train_rows=len(train), val_rows=len(self.val))
            tokenizer.save_pretrained(self.run_dir)

        self.events.publish(ev.Status("Tokenising"))
        warnings = list(data.warnings) + split_warnings
        max_length = min(cfg.max_length, getattr(model.config, "max_position_embeddings", None) or cfg.max_length)
        if max_length < cfg.max_length:
            warnings.append(f"Max length lowered to {max_length} tokens, the longest input this model accepts.")
        self._max_length = max_length
        train_enc = task.encode(tokenizer, train, max_length, self.task_state)
        warnings += task.encoding_warnings(train_enc, train)
        unk = unknown_share(tokenizer, train_enc.input_ids)
        if (warning := unknown_token_warning(unk, cfg.base_model, task.texts(train))):
            warnings.append(warning)
        check_memory(model.config, cfg.batch_size, max(len(x) for x in train_enc.input_ids), self.device)
        world = self.parallel.world
        global_batch = cfg.batch_size * world
        schedule = plan_schedule(cfg, len(train), world)
        steps_per_epoch, eval_every = schedule.steps_per_epoch, schedule.eval_every
        loop = LoopState(total=schedule.total_steps)
        optimizer = make_optimizer(model, cfg, new_weights)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * loop.total), loop.total)
        generator = torch.Generator().manual_seed(cfg.seed)
        if self._resuming:
            loop = self._load_resume(optimizer, scheduler, generator)
            self._best = loop.best
        self._baseline = task.baseline(train, self.val, self.task_state)
        if self.parallel.main and task.classical_name:
            self._classical_job = start_classical(task, train, self.val, dict(self.task_state), cfg.seed)
        self.events.publish(ev.Started(
            str(self.run_dir), loop.total, len(train), len(self.val), data.label_names, self.precision, unk, warnings,
            sum(p.numel() for p in model.parameters() if p.requires_grad), sum(p.numel() for p in model.parameters()),
            task.name, schedule.describe()))
        if world > 1:
            self.events.publish(ev.Status(f"Data-parallel on {world} processes: global batch {global_batch} = "
                                          f"{cfg.batch_size} per process x {world}"))

        lengths = [len(x) for x in train_enc.input_ids]
        self._started = time.time() - loop.elapsed
        model.train()
        while loop.step < loop.total:
            epoch_rng = generator.get_state()
            for index, rows in enumerate(length_grouped_batches(lengths, global_batch, generator, cfg.group_by_length)):
                if index < loop.batch_in_epoch:
                    continue  # already trained before the resume checkpoint
                indices, loss = self.parallel.shard(rows), None
                if indices:
                    batch = train_enc.batch(indices, tokenizer, self.device)
                    with self.autocast():
                        loss = task.loss(model, batch)
                    loss.backward()
                loss_value, stop = self.parallel.sync_step(model, loss, len(indices), self._cancel.is_set())
                if stop:
                    raise Cancelled()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                loop.step, loop.seen, loop.batch_in_epoch = loop.step + 1, loop.seen + len(rows), index + 1
                elapsed = time.time() - self._started
                self.events.publish(ev.Step(loop.step, loop.total, loop.step / steps_per_epoch, loss_value,
                                            scheduler.get_last_lr()[0], loop.seen / elapsed,
                                            elapsed / loop.step * (loop.total - loop.step)))
                self._publish_classical()
                if loop.step % eval_every == 0 or loop.step == loop.total:
                    if self.parallel.main:  # the others wait for its verdict on early stopping
                        self._evaluate_and_save(loop, steps_per_epoch, optimizer, scheduler, epoch_rng)
                    loop.total = self.parallel.share(loop.total)
                if loop.step >= loop.total:
                    break
            loop.epoch, loop.batch_in_epoch = loop.epoch + 1, 0
        if not self.parallel.main:
            return
        self._samples_per_s = loop.seen / (time.time() - self._started)
        metrics = self._write_metrics()
        self.store.set_status(self.run_dir, FINISHED)
        self.events.publish(ev.Finished(str(self.run_dir), metrics, metrics["train_seconds"], self._samples_per_s))

    def _evaluate_and_save(self, loop: LoopState, steps_per_epoch: int, optimizer, scheduler,
                           epoch_rng: torch.Tensor) -> None:
        """Score the model, keep it if best, stop early if it stopped improving, and write a resume checkpoint."""
        improved = self._evaluate(loop.step, loop.step / steps_per_epoch)
        loop.bad_evals = 0 if improved else loop.bad_evals + 1
        patience = self.config.early_stopping_patience
        if patience and loop.bad_evals >= patience:
            self.events.publish(ev.Status(f"Early stopping: {self.task.primary_metric} did not improve in "
                                          f"{loop.bad_evals} evaluations"))
            loop.total = loop.step
        loop.elapsed, loop.best = time.time() - self._started, self._best
        self._save_resume(loop, optimizer, scheduler, epoch_rng)

    def _load_model(self):
        """The tokenizer, the base model from a local folder with the task's head (LoRA or frozen embeddings as
        configured) and the names of the weights the base model did not have (the new head)."""
        cfg, task = self.config, self.task
        path = resolve_model_path(cfg.base_model)
        tokenizer = training_tokenizer(cfg.base_model)
        task.check_tokenizer(tokenizer, cfg.base_model)
        model, loading = task.model_class.from_pretrained(
            path, local_files_only=True, use_safetensors=True, ignore_mismatched_sizes=True, output_loading_info=True,
            **task.head(self.data), **training_overrides(path, cfg, self.device))
        new_weights = set(loading["missing_keys"]) | {
            key if isinstance(key, str) else key[0] for key in loading["mismatched_keys"]}
        model.config.pad_token_id = tokenizer.pad_token_id
        keep_bottom_layers(model, cfg.keep_layers)
        if cfg.lora:
            model = apply_lora(model, cfg, task.peft_task)
        elif cfg.freeze_embeddings:
            freeze_token_embeddings(model)
        return tokenizer, model, new_weights

    def save_dataset(self, **split_counts) -> None:
        """Describe the data (data.json) and keep a copy (dataset.csv): a resumed run or a worker process
        rebuilds the data from these."""
        data = self.data
        write_json_atomic(self.run_dir / "data.json", {
            "name": self.data_name, "task": self.task.name, "columns": data.columns, "label_names": data.label_names,
            "rows_total": data.rows_total, "rows_dropped": data.rows_dropped, **split_counts,
            "class_counts": self.task.balance(data),
        })
        write_csv_atomic(self.task.to_frame(data), self.run_dir / "dataset.csv")

    def _save_resume(self, loop: LoopState, optimizer, scheduler, epoch_rng: torch.Tensor) -> None:
        """Current weights + optimizer/scheduler/RNG state, written to a temp folder then swapped in."""
        tmp, final, old = (self.run_dir / f".{RESUME_DIR}-tmp", self.run_dir / RESUME_DIR,
                           self.run_dir / f".{RESUME_DIR}-old")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_file(trainable_state(self.model), str(tmp / "trainable.safetensors"))
        torch.save({"loop": asdict(loop), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "epoch_rng": epoch_rng, "torch_rng": torch.get_rng_state()}, tmp / "state.pt")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)

    def _load_resume(self, optimizer, scheduler, generator: torch.Generator) -> LoopState:
        folder = self.run_dir / RESUME_DIR
        weights = folder / "trainable.safetensors"
        if not weights.exists():  # resume checkpoints written before 2026-11-29 hold every weight
            weights = folder / "model.safetensors"
        unexpected = self.model.load_state_dict(load_file(weights, device=str(self.device)), strict=False).unexpected_keys
        if unexpected:  # strict=False only because the frozen weights are not saved; names must still match
            raise ModelError(f"The resume checkpoint does not fit this model ({len(unexpected)} unknown weights, "
                             f"e.g. {unexpected[0]}).")
        state = torch.load(folder / "state.pt", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["epoch_rng"])
        torch.set_rng_state(state["torch_rng"])
        self.events.publish(ev.Status(f"Resuming from step {state['loop']['step']}"))
        loop = LoopState(**state["loop"])
        self.task_state.update((loop.best or {}).get("task_state", {}))
        return loop

    # -- evaluation (the task scores; the engine keeps the best) ---------------
    @property
    def val_encoded(self) -> Encoded:
        if self._val_enc is None:
            self._val_enc = self.task.encode(self.tokenizer, self.val, self._max_length, self.task_state)
        return self._val_enc

    def forward_batches(self, enc: Encoded, forward=None):
        """Yield (row indices, batch, ``forward(model, batch)``; default the model's output) over ``enc``, shortest
        rows first, without gradients."""
        order = sorted(range(len(enc.input_ids)), key=lambda i: len(enc.input_ids[i]))
        batch_size = max(64, self.config.batch_size * 2)
        for start in range(0, len(order), batch_size):
            self.check_cancel()
            indices = order[start:start + batch_size]
            batch = enc.batch(indices, self.tokenizer, self.device)
            with torch.inference_mode(), self.autocast():
                yield indices, batch, forward(self.model, batch) if forward else self.model(**batch)

    def forward_validation(self) -> tuple[float, list[np.ndarray]]:
        """Mean validation loss and each row's logits (per-token tasks: one row of logits per token)."""
        enc = self.val_encoded
        total_loss, outputs = 0.0, [None] * len(enc.input_ids)
        for indices, _, out in self.forward_batches(enc):
            total_loss += float(out.loss) * len(indices)
            logits = out.logits.float().cpu().numpy()
            for row, i in enumerate(indices):
                outputs[i] = logits[row, :len(enc.input_ids[i])] if enc.per_token else logits[row]
        return total_loss / len(outputs), outputs

    def _evaluate(self, step: int, epoch: float) -> bool:
        self.model.eval()
        try:
            loss, scored = self.task.evaluate(self)
        finally:
            self.model.train()
        metrics = {**scored.metrics, "val_loss": loss}
        primary = self.task.primary_metric
        value, best = metrics[primary], (self._best or {}).get(primary)
        improved = best is None or (value > best if self.task.greater_is_better else value < best)
        if improved:
            self.task_state.update(scored.state)
            self._best = {**metrics, "step": step, "epoch": epoch, "task_state": dict(self.task_state)}
            self._save_checkpoint()
            if scored.predictions is not None:
                write_csv_atomic(scored.predictions, self.run_dir / "validation_predictions.csv")
            if scored.probabilities is not None:
                save_outputs(self.run_dir, scored.probabilities, scored.truth)
        self.events.publish(ev.Evaluation(step, epoch, loss, metrics, primary, improved))
        return improved

    def _save_checkpoint(self) -> None:
        """Save weights (or the LoRA adapter) + config, with the task and its fitted state, then move each file in."""
        tmp = self.run_dir / ".checkpoint-tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        config = self.model.get_base_model().config if self.config.lora else self.model.config
        config.sft_studio = {"task": self.task.name, **self.task_state}
        self.model.save_pretrained(tmp, safe_serialization=True)
        if self.config.lora:
            config.save_pretrained(tmp)
        for item in tmp.iterdir():
            os.replace(item, self.run_dir / item.name)
        tmp.rmdir()

    def _publish_classical(self, wait: bool = False) -> None:
        """Publish the classical baseline once its thread has fitted it (checked at each step; ``wait`` at the end)."""
        job = self._classical_job
        if job is None or not (wait or job.done()):
            return
        self._classical_job = None
        self._classical = classical_result(job, self.task)
        self.events.publish(ev.Baselines(self._baseline, self._classical))

    def _write_metrics(self) -> dict:
        self._publish_classical(wait=True)
        metrics = dict(self._best or {})
        metrics.update({
            "task": self.task.name,
            "primary_metric": self.task.primary_metric,
            "greater_is_better": self.task.greater_is_better,
            "baseline": self._baseline,
            "classical": self._classical,
            "train_seconds": time.time() - self._started,
            "samples_per_s": self._samples_per_s,
            "precision": self.precision,
            "device": str(self.device),
        })
        write_json_atomic(self.run_dir / "metrics.json", metrics)
        return metrics
