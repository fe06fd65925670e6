"""Data parallelism for the training loop: one process (no-ops) or N processes started by accelerate.

Every process draws the same global batches (batch size x N, from the same seeded generator) and takes its
own interleaved share of each, so N processes see exactly the rows one process would with the global batch.
Gradients, the step's loss and a stop flag travel in one all-reduce per step; process 0 alone evaluates,
writes checkpoints and publishes events.
"""
from __future__ import annotations

import torch


class PeerLost(Exception):
    """Another process of the group is gone (killed, out of memory): its collective failed."""


def collective(operation, *args, **kwargs):
    try:
        return operation(*args, **kwargs)
    except RuntimeError as exc:  # gloo/NCCL report a lost peer as a RuntimeError
        raise PeerLost(str(exc).splitlines()[0][:300]) from exc


class SingleProcess:
    """Training in this process only: every collective is a no-op."""

    rank, world, main, distributed = 0, 1, True, False
    device: torch.device | None = None  # None: the engine picks one

    def shard(self, indices: list[int]) -> list[int]:
        return indices

    def sync_step(self, model: torch.nn.Module, loss: torch.Tensor | None, rows: int, stop: bool) -> tuple[float, bool]:
        """The step's loss (a mean over its ``rows``) as a number, and whether any process wants to stop."""
        return (loss.item() if loss is not None else 0.0), stop

    def share(self, value: int) -> int:
        """Process 0's value of ``value`` on every process."""
        return value


class DataParallel(SingleProcess):
    """One of N processes of a ``torch.distributed`` group that accelerate's ``PartialState`` set up."""

    def __init__(self, state) -> None:
        self.rank, self.world, self.main = state.process_index, state.num_processes, state.is_main_process
        self.distributed = True
        self.device = state.device if state.device.type != "cpu" else torch.device("cpu")

    def shard(self, indices: list[int]) -> list[int]:
        return indices[self.rank::self.world]

    def sync_step(self, model, loss, rows, stop):
        """Average gradients and the loss over processes, weighted by each one's rows (a short last batch splits
        unevenly), in one all-reduce; a process with no rows this step contributes zeros."""
        params = [p for p in model.parameters() if p.requires_grad]
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        extra = torch.tensor([loss.item() if loss is not None else 0.0, 1.0, float(stop)],
                             device=grads[0].device, dtype=grads[0].dtype)
        flat = torch.cat([g.reshape(-1) for g in grads] + [extra]).mul_(rows)
        flat[-1] = float(stop)
        collective(torch.distributed.all_reduce, flat)
        total_rows = max(flat[-2].item(), 1.0)
        offset = 0
        for param, grad in zip(params, grads):
            count = grad.numel()
            param.grad = flat[offset:offset + count].view_as(grad).div_(total_rows)
            offset += count
        return flat[-3].item() / total_rows, flat[-1].item() > 0

    def share(self, value: int) -> int:
        box = [value]
        collective(torch.distributed.broadcast_object_list, box, src=0)
        return box[0]
