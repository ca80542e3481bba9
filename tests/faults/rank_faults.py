"""One rank of ``tlstudio train`` with a fault injected, for the tests of a run of several processes.

``torchrun --nproc-per-node 2 -m tests.faults.rank_faults FAULT RANK STEP MARK train ...`` runs the train
command on every rank; on rank RANK, from its training step STEP on, FAULT happens: ``nan`` makes the
loss not a number, ``stop`` sends the process SIGTERM (as a cluster's scheduler stops a job). The
moment of the fault is written to the file MARK.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import torch

from tlstudio import cli
from tlstudio.core.engine import fit


def inject(fault: str, step: int, mark: str) -> None:
    forward, calls = fit._forward, [0]

    def faulty(ctx, feed, x, y, teacher):
        logits, loss = forward(ctx, feed, x, y, teacher)
        calls[0] += 1
        if calls[0] >= step:
            if not os.path.exists(mark):
                with open(mark, "w") as f:
                    f.write(str(time.time()))
            if fault == "nan":
                loss = loss * torch.tensor(float("nan"))
            elif calls[0] == step:
                os.kill(os.getpid(), signal.SIGTERM)
        return logits, loss

    fit._forward = faulty


def main(argv: list[str]) -> int:
    fault, rank, step, mark, *command = argv
    if int(os.environ["RANK"]) == int(rank):
        inject(fault, int(step), mark)
    return cli.main(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
