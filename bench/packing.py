"""Sequence packing vs the engine's length-grouped padded batches, SmolLM2 assistant training on a CPU.

    python -m bench.packing [--datasets chatterbot,news] [--method lora|full] [--batches 10]

The same 16-example batches (the engine's length-grouped order) either padded to their longest row, as the
engine trains, or packed first-fit into rows of up to 256 tokens with position ids restarting at every
example and no attention mask, from which transformers builds a block-diagonal causal mask (as TRL's
``padding_free``). Checks that both give the same loss on a batch, then times forward + backward of each.
"""
from __future__ import annotations

import argparse
import time

import torch
from transformers import AutoModelForCausalLM

from core.common.devices import autocast, resolve_precision
from core.models.lora import apply_lora
from core.models.registry import DEFAULT_CHAT_MODEL, resolve_model_path, training_tokenizer
from core.tasks import get_task
from core.train.model_setup import length_grouped_batches

from .gen_speed import MAX_LENGTH, config_for, load_data, split


def pack(enc, indices: list[int], pad_id: int, width_limit: int = MAX_LENGTH) -> dict[str, torch.Tensor]:
    """First-fit rows of whole examples; a row's unused tail is one more 'example' of padding."""
    rows: list[list[int]] = []
    for i in sorted(indices, key=lambda i: -len(enc.input_ids[i])):
        row = next((r for r in rows if sum(len(enc.input_ids[j]) for j in r) + len(enc.input_ids[i]) <= width_limit), None)
        (row.append(i) if row is not None else rows.append([i]))
    width = max(sum(len(enc.input_ids[j]) for j in r) for r in rows)
    ids, labels, positions = [], [], []
    for row in rows:
        row_ids = [t for j in row for t in enc.input_ids[j]]
        tail = width - len(row_ids)
        ids.append(row_ids + [pad_id] * tail)
        labels.append([t for j in row for t in enc.labels[j]] + [-100] * tail)
        positions.append([p for j in row for p in range(len(enc.input_ids[j]))] + list(range(tail)))
    return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "position_ids": torch.tensor(positions)}


def summed_loss(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """The assistant task's loss times its response tokens, so batches of either layout add up alike."""
    tokens = int((batch["labels"][:, 1:] != -100).sum())
    return get_task("assistant").loss(model, batch) * tokens, tokens


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="chatterbot,news")
    parser.add_argument("--method", default="lora", choices=("lora", "full"))
    parser.add_argument("--batches", type=int, default=10)
    args = parser.parse_args(argv)
    device = torch.device("cpu")
    tokenizer = training_tokenizer(DEFAULT_CHAT_MODEL)
    print("| data | layout | rows/s | tensor cells | real tokens | padding share |\n|---|---|---|---|---|---|")
    for dataset in args.datasets.split(","):
        config = config_for(args.method, argparse.Namespace(steps=args.batches, batch_size=16, seed=42))
        train, _ = split(load_data(dataset), config)
        enc = get_task("assistant").encode(tokenizer, train, MAX_LENGTH, {})
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_pretrained(resolve_model_path(DEFAULT_CHAT_MODEL), attn_implementation="eager")
        model = apply_lora(model, config, "CAUSAL_LM") if config.lora else model
        model.train()
        lengths = [len(x) for x in enc.input_ids]
        batches = length_grouped_batches(lengths, 16, torch.Generator().manual_seed(0))[:args.batches + 2]
        layouts = {"padded": lambda ix: enc.batch(ix, tokenizer, device),
                   "packed": lambda ix: pack(enc, ix, tokenizer.pad_token_id)}
        with torch.no_grad():
            same = [summed_loss(model, make(batches[0]))[0].item() for make in layouts.values()]
        assert abs(same[0] - same[1]) < 1e-3 * abs(same[0]), same  # no token attends across examples
        for name, make in layouts.items():
            cells, started = 0, 0.0
            for n, indices in enumerate(batches):
                if n == 2:  # two warm-up batches
                    started = time.time()
                batch = make(indices)
                cells += batch["input_ids"].numel() if n >= 2 else 0
                with autocast(device, resolve_precision("auto", device)):
                    loss, tokens = summed_loss(model, batch)
                (loss / tokens).backward()
                model.zero_grad(set_to_none=True)
            real = sum(lengths[i] for indices in batches[2:] for i in indices)
            print(f"| {dataset} | {name} | {16 * args.batches / (time.time() - started):.2f} | {cells:,} | {real:,} | "
                  f"{1 - real / cells:.1%} |")


if __name__ == "__main__":
    main()
