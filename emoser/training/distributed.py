"""Data-parallel training on several processes (``torchrun``): process group, sampler, one pass.

``torchrun --nproc_per_node=N -m emoser train ...`` starts N processes; each sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. With ``WORLD_SIZE`` > 1
the command line calls :func:`start` (NCCL on GPUs, gloo on CPUs, a timeout so that a dead
peer is an error, not a hang) and :func:`emoser.training.fit` trains through
``DistributedDataParallel``:

* every process draws the same *global* batches from the run's seed (as
  :class:`~emoser.training.batches.EpochBatches` does in one process) and takes its shard of
  each (:class:`ShardedBatches`): N processes with a global batch B see the batches one
  process with batch B sees;
* each process's loss is its sum × N / (examples in the global batch), so DDP's average of
  the gradients is the mean over the global batch, also for a last batch that splits
  unevenly; gradient clipping follows the all-reduce, as in one process;
* the training loss and accuracy are sums and counts added over the processes;
* the weights stay identical in every process, so each measures the validation and test sets
  itself (the same numbers everywhere); rank 0 alone prints and writes the checkpoint.

Python code run by torchrun calls :func:`start` before training and :func:`stop` after.

Without ``WORLD_SIZE`` > 1 nothing here runs and training is the single-process loop.

Chapter: chapters/06_training.ipynb
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..prep.framing import collate_frames
from .batches import EpochBatches

__all__ = ["Group", "requested", "start", "stop", "active", "rank", "world_size",
           "is_main", "ShardedBatches", "shard_size", "run_sharded", "all_sum", "TIMEOUT_SECONDS"]

#: Seconds a collective operation (or the start) waits for a peer before it fails
#: (``EMOSER_DISTRIBUTED_TIMEOUT`` overrides).
TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Group:
    """This process's place in the process group (what :func:`start` returns).

    Chapter: chapters/06_training.ipynb
    """

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device


def requested() -> bool:
    """True when the environment asks for several processes (``WORLD_SIZE`` > 1, torchrun).

    Chapter: chapters/06_training.ipynb
    """
    env = os.environ.get("WORLD_SIZE", "").strip()
    return env.isdigit() and int(env) > 1


def active() -> bool:
    """True while a process group of more than one process is running.

    Chapter: chapters/06_training.ipynb
    """
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group).

    Chapter: chapters/06_training.ipynb
    """
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """Number of processes (1 without a process group).

    Chapter: chapters/06_training.ipynb
    """
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """True in the process that prints and saves (rank 0, or the only process).

    Chapter: chapters/06_training.ipynb
    """
    return rank() == 0


def start(dev: torch.device | str | None = None, timeout: float | None = None) -> Group:
    """Join the process group torchrun describes; NCCL for a GPU, gloo for the CPU.

    Args:
        dev: the device asked for (None or ``"cuda"``: this process's GPU ``cuda:LOCAL_RANK``
            when there is one; ``"cpu"``: gloo on the CPU).
        timeout (float | None): seconds a collective waits for a peer before it raises
            (None: ``$EMOSER_DISTRIBUTED_TIMEOUT``, else :data:`TIMEOUT_SECONDS`).

    Returns:
        Group: rank, world size, local rank, backend and this process's device.

    Chapter: chapters/06_training.ipynb
    """
    if timeout is None:
        timeout = float(os.environ.get("EMOSER_DISTRIBUTED_TIMEOUT", "") or TIMEOUT_SECONDS)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device(dev) if dev is not None else None
    use_cuda = torch.cuda.is_available() and (dev is None or dev.type == "cuda")
    if use_cuda:
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        dev, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=float(timeout)))
    return Group(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank,
                 backend=backend, device=dev)


def stop() -> None:
    """Leave the process group (nothing happens without one).

    Chapter: chapters/06_training.ipynb
    """
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values: list[float], dev: torch.device) -> list[float]:
    """Add ``values`` over all processes (float64; the same numbers come back everywhere).

    Chapter: chapters/06_training.ipynb
    """
    t = torch.tensor(values, dtype=torch.float64, device=dev)
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


class ShardedBatches:
    """This process's shard of every global batch of an :class:`EpochBatches`.

    Every process holds an :class:`EpochBatches` seeded alike, so all draw the same global
    batches; a global batch of ``n`` examples is cut into ``world_size`` contiguous shards
    of ``ceil(n / world_size)`` (the last ones may be shorter or empty). Iterating yields
    ``(shard, global_count)``; an empty shard comes as ``([first example], 0)``: the process
    must still take part in the gradient's all-reduce, with a weight of zero.

    Chapter: chapters/06_training.ipynb
    """

    def __init__(self, batches: EpochBatches, rank: int, world_size: int):
        self.global_batches = batches
        self.rank = int(rank)
        self.world_size = int(world_size)

    def __len__(self) -> int:
        return len(self.global_batches)

    def shard(self, batch: list[int]) -> list[int]:
        """This process's part of one global batch (possibly empty)."""
        size = shard_size(len(batch), self.world_size)
        return batch[self.rank * size:(self.rank + 1) * size]

    def __iter__(self):
        for batch in self.global_batches.batches():
            part = self.shard(batch)
            yield (part, len(batch)) if part else (batch[:1], 0)


def shard_size(batch_size: int, world_size: int) -> int:
    """Examples per process of a global batch: the first processes take this many each.

    Chapter: chapters/06_training.ipynb
    """
    return -(-int(batch_size) // int(world_size))


def run_sharded(ddp_model: nn.Module, dataset, batches: ShardedBatches, dev: torch.device,
                optimizer, clip_grad_norm: float | None = None, bar=None):
    """One training pass over this process's shards; loss and accuracy over all processes.

    ``ddp_model`` is the model wrapped in ``DistributedDataParallel``. Each process's loss
    is its sum × world size / the global batch's count, so the gradient DDP averages is the
    mean over the global batch; clipping comes after backward (after the all-reduce).

    Chapter: chapters/06_training.ipynb
    """
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    params = list(ddp_model.parameters())
    total_loss = torch.zeros((), dtype=torch.float64, device=dev)
    correct = torch.zeros((), dtype=torch.int64, device=dev)
    count = 0
    for part, global_count in batches:
        x, lengths, y = collate_frames([dataset[i] for i in part])
        x, y, lengths = x.to(dev), y.to(dev), lengths.to(dev)
        logits = ddp_model(x, lengths)
        loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        if global_count:
            (loss * (batches.world_size / global_count)).backward()
        else:  # an empty shard: a zero-weight stand-in, so that the all-reduce still happens
            (loss * 0.0).backward()
        if clip_grad_norm is not None:
            nn.utils.clip_grad_norm_(params, clip_grad_norm)
        optimizer.step()
        if global_count:
            total_loss += loss.detach().double()
            correct += (logits.detach().argmax(dim=1) == y).sum()
            count += y.numel()
        if bar is not None:
            bar.update(1)
    loss_sum, n_correct, n = all_sum([total_loss.item(), float(correct.item()), float(count)], dev)
    if n == 0:
        raise ValueError("the data set is empty")
    return loss_sum / n, n_correct / n
