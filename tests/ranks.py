"""Run a function in several CPU processes joined by gloo on loopback, as torchrun would start them.

``run_ranks(fn, 2, *args)`` calls ``fn(ranks, *args)`` in two fresh processes (spawned, so each imports
torch anew) with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE and a free MASTER_PORT set, and
returns what each returned, by rank. ``fn`` must be a module-level function of an importable module.
An exception in any rank fails the call with that rank's traceback.
"""

from __future__ import annotations

import os
import socket
import traceback

import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world: int, port: int, fn, args, results) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1",
    )
    import torch

    from tlstudio.core import distributed

    torch.set_num_threads(1)
    ranks = distributed.join(distributed.from_environment(), torch.device("cpu"))
    try:
        results.put((rank, "ok", fn(ranks, *args)))
    except BaseException:
        results.put((rank, "error", traceback.format_exc()))
    finally:
        distributed.leave()


def run_ranks(fn, world: int, *args, timeout: float = 300.0) -> list:
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_rank_main, args=(r, world, port, fn, args, results)) for r in range(world)]
    raise_if_bad = []
    for p in procs:
        p.start()
    out: dict[int, object] = {}
    try:
        for _ in range(world):
            rank, state, value = results.get(timeout=timeout)
            if state == "error":
                raise_if_bad.append(f"rank {rank}:\n{value}")
            out[rank] = value
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    if raise_if_bad:
        raise AssertionError("\n".join(raise_if_bad))
    return [out[r] for r in range(world)]

