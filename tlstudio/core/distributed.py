"""Training in several processes started by torchrun: who this process is, and what the processes agree on.

``torchrun`` (``torch.distributed.run``) starts the processes and tells each its ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE``; ``join`` reads them and joins the process
group (NCCL on CUDA, gloo on the CPU). Scheduling, rendezvous and communication are torch's:
this module only decides what each rank does and how the ranks end together.

Ending together: a rank that is stopped (Ctrl+C, SIGTERM from a cluster's scheduler) or fails
would leave the others blocked in their next collective. So each unit of shared work (a
training step, a cache shard) ends in ``Together``: every rank says whether it finished, was
stopped or failed, and when one did not finish, every rank ends there, with that rank and its
cause in the message.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Optional

from tlstudio.core.errors import UserError
from tlstudio.core.events import Cancelled, StopToken

if TYPE_CHECKING:
    import torch

OK, STOPPED, FAILED = 0, 1, 2
TIMEOUT = timedelta(minutes=30)  # a collective that waits longer than this: a rank is gone (torchrun ends the others first)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the processes of one run; ``SINGLE`` when it runs alone."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    device: str = "cpu"  # where collectives put their tensors (NCCL needs them on this rank's GPU)

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes the run's files, checkpoints and the export."""
        return self.rank == 0

    def name(self, rank: Optional[int] = None) -> str:
        return f"rank {self.rank if rank is None else rank} of {self.world}"

    def batch_block(self, count: int, batch_size: int) -> range:
        """This rank's share of ``count`` items in whole batches of ``batch_size``, contiguous and in order.

        Each item lands in the same batch as in one process, so a cache built in parallel holds the
        values one process computes (same batch, same kernels), and the blocks join in rank order."""
        batches = -(-count // batch_size) if count else 0
        first, last = batches * self.rank // self.world, batches * (self.rank + 1) // self.world
        return range(min(count, first * batch_size), min(count, last * batch_size))


SINGLE = Ranks()


def launched() -> bool:
    """True inside a process torchrun started for a run of several processes."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and "RANK" in os.environ


def from_environment() -> Ranks:
    if not launched():
        return SINGLE
    env = os.environ
    world = int(env["WORLD_SIZE"])
    return Ranks(int(env["RANK"]), world, int(env.get("LOCAL_RANK", 0)), int(env.get("LOCAL_WORLD_SIZE", world)))


def rank_device(ranks: Ranks, wanted: str) -> str:
    """The device setting for this rank: each process takes its own GPU (``cuda:LOCAL_RANK``)."""
    import torch

    if not ranks.active:
        return wanted
    if wanted in ("auto", "cuda") and torch.cuda.is_available():
        if ranks.local_rank >= torch.cuda.device_count():
            raise UserError(
                f"{ranks.name()} has no GPU of its own: this machine has {torch.cuda.device_count()} GPU(s) for "
                f"{ranks.local_world} processes. Start at most one process per GPU (--nproc / --nproc-per-node)."
            )
        return f"cuda:{ranks.local_rank}"
    if wanted.startswith("cuda:"):
        raise UserError(f"--device {wanted} gives every process the same GPU; use --device cuda (or auto): each process takes its own.")
    return "cpu" if wanted == "auto" else wanted


def join(ranks: Ranks, device: torch.device) -> Ranks:
    """Join the run's process group (once); the ranks with the device their collectives use."""
    if not ranks.active:
        return ranks
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, timeout=TIMEOUT)
    return replace(ranks, device=str(device) if device.type == "cuda" else "cpu")


def leave() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def share_cpu_cores(ranks: Ranks) -> Optional[list[int]]:
    """On the CPU, each of a machine's processes gets its own share of its cores (and as many threads):
    without it, N processes each start a thread per core and slow each other down. None: left as it is."""
    import torch

    if not ranks.active or not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    share = len(cores) // ranks.local_world
    if share < 1:
        return None  # more processes than cores: nothing to pin them to
    mine = cores[ranks.local_rank * share : (ranks.local_rank + 1) * share]
    os.sched_setaffinity(0, mine)
    torch.set_num_threads(len(mine))
    return mine


def stop_on_signals(stop: StopToken) -> None:
    """Ctrl+C (SIGINT) and a scheduler's SIGTERM ask the run to stop after its current step, like the Stop
    button: every rank then ends at the same step, and rank 0 leaves a checkpoint to resume from."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.stop())


@dataclass(frozen=True)
class Trouble:
    rank: int
    code: int  # STOPPED or FAILED
    message: str


def settle(ranks: Ranks, code: int = OK, message: str = "") -> list[Trouble]:
    """Every rank's outcome of the same unit of work (a collective: all ranks must call it); empty when all finished."""
    if not ranks.active:
        return [Trouble(0, code, message)] if code != OK else []
    import torch
    import torch.distributed as dist

    codes = torch.zeros(ranks.world, dtype=torch.int64, device=ranks.device)
    codes[ranks.rank] = code
    dist.all_reduce(codes)
    codes = codes.tolist()
    if not any(codes):
        return []
    messages: list[Optional[str]] = [None] * ranks.world
    dist.all_gather_object(messages, message)
    return [Trouble(r, c, messages[r] or "") for r, c in enumerate(codes) if c]


class RankFailed(UserError):
    """A rank failed and every rank ends with it, saying which rank and why. ``settled``: all ranks know
    (rank 0 reports it; the others need not repeat it)."""

    settled = True

    def __init__(self, ranks: Ranks, rank: int, message: str):
        self.rank = rank
        super().__init__(f"{ranks.name(rank)} stopped the run: {message}")


def unshared_cache(ranks: Ranks, file, folder) -> UserError:
    """The error of a rank that cannot see a cache file another rank wrote: ``folder`` is local to one machine."""
    return UserError(
        f"{ranks.name()} cannot see the cache file '{file}' that another rank wrote in '{folder}': that folder is not "
        f"shared by every machine of the run. Give --cache a folder on a shared file system."
    )


class Together:
    """``with Together(ranks, stop): ...`` ends every rank at the end of the block when one rank raised or was stopped.

    A failure wins over a stop: every rank raises a ``RankFailed`` naming the rank that failed and its message
    (that rank keeps its own exception when it is a bug, not a ``UserError``); a stop on any rank is a
    ``Cancelled`` on all of them. Alone, it changes nothing."""

    def __init__(self, ranks: Ranks, stop: StopToken):
        self.ranks, self.stop = ranks, stop

    def __enter__(self) -> "Together":
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if not self.ranks.active:
            return False
        code, message = _outcome(exc, self.stop)
        trouble = settle(self.ranks, code, message)
        failed = [t for t in trouble if t.code == FAILED]
        if failed:
            if exc is not None and code == FAILED:
                if isinstance(exc, UserError) and not isinstance(exc, RankFailed):
                    raise RankFailed(self.ranks, self.ranks.rank, str(exc)) from exc
                return False
            raise RankFailed(self.ranks, failed[0].rank, failed[0].message)
        if trouble:
            if exc is not None:
                return False  # its own stop (Cancelled or KeyboardInterrupt) goes on
            raise Cancelled()
        return False


def _outcome(exc: Optional[BaseException], stop: StopToken) -> tuple[int, str]:
    if exc is None:
        return (STOPPED, "stopped") if stop.stopped else (OK, "")
    if isinstance(exc, (Cancelled, KeyboardInterrupt)):
        return STOPPED, "stopped"
    message = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
    return FAILED, message


def all_sum(ranks: Ranks, values: list[float]) -> list[float]:
    """``values`` summed over the ranks (float64), for figures such as an epoch's training loss over every shard."""
    if not ranks.active:
        return list(values)
    import torch
    import torch.distributed as dist

    total = torch.tensor(values, dtype=torch.float64, device=ranks.device)
    dist.all_reduce(total)
    return total.tolist()


def from_main(ranks: Ranks, value):
    """Rank 0's ``value`` on every rank (a small picklable object): one decision the ranks all follow."""
    if not ranks.active:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def data_parallel(module: torch.nn.Module, ranks: Ranks, device: torch.device) -> torch.nn.Module:
    """``module`` with its gradients averaged over the ranks at every backward pass (DDP); alone, itself.

    Buffers are not broadcast: BatchNorm statistics are either frozen or synchronised by SyncBatchNorm."""
    if not ranks.active or not any(p.requires_grad for p in module.parameters()):
        return module
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    newer = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters  # broadcast_buffers' new name
    return DistributedDataParallel(module, device_ids=ids, **{"forward_sync_buffers" if newer else "broadcast_buffers": False})


def synchronised_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """BatchNorm layers that compute their statistics over the global batch of every GPU (CUDA only).

    timm's conversion: it also keeps the activation of timm's BatchNormAct2d layers, which torch's
    ``SyncBatchNorm.convert_sync_batchnorm`` would drop (the EfficientNet-Lite backbones use them).
    The state dict keeps its keys, so the weights load back into the unconverted model for the export."""
    from timm.layers import convert_sync_batchnorm

    return convert_sync_batchnorm(model)
