"""`tlstudio train --nproc N`: the same training in N processes on this machine, started by torchrun.

``launch`` runs ``torch.distributed.run`` (torchrun) in this process with a standalone rendezvous on
this machine, which starts ``python -m tlstudio train ...`` N times with its rank in the environment.
On a cluster the user runs torchrun itself (``torchrun --nnodes M --nproc-per-node N -m tlstudio train
...``): each rank's side (``prepare_rank``, ``rank_progress``, ``rank_stop``) is the same either way.
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

from tlstudio.core import distributed
from tlstudio.core.errors import UserError
from tlstudio.core.events import StopToken, ignore_events

STOPPED_EXIT = 130


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Train in ``nproc`` processes here; the exit code is the run's: 0, 130 when stopped, 2 when it failed."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // nproc)))  # torchrun would set 1 and warn
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # each rank reports for itself
    args = get_args_parser().parse_args(["--standalone", f"--nproc-per-node={nproc}", "--module", "tlstudio", *argv])
    try:
        run(args)
    except ChildFailedError as exc:
        codes = {failure.exitcode for failure in exc.failures.values()}
        return STOPPED_EXIT if codes <= {STOPPED_EXIT, -2, -15} else 2  # stopped by Ctrl+C or SIGTERM, or failed
    except Exception as exc:  # the launcher's own (a signal, a rendezvous that could not start)
        if type(exc).__name__ == "SignalException":
            return STOPPED_EXIT
        raise UserError(f"--nproc {nproc}: the processes could not be started ({type(exc).__name__}: {exc}).") from None
    return 0


def without_nproc(argv: Sequence[str]) -> list[str]:
    """The command line each process runs: this one without ``--nproc N``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def rank_stop(ranks: distributed.Ranks) -> StopToken:
    """The stop token of a rank: Ctrl+C and SIGTERM stop the run after the current step, on every rank."""
    stop = StopToken()
    distributed.stop_on_signals(stop)
    return stop


def rank_progress(ranks: distributed.Ranks, progress):
    """Rank 0 shows the progress; the others would only repeat it."""
    return progress if ranks.is_main else ignore_events


def prepare_rank(device_setting: str) -> distributed.Ranks:
    """This process's ranks, with its own share of the CPU cores when it trains on the CPU."""
    ranks = distributed.from_environment()
    if ranks.active and distributed.rank_device(ranks, device_setting) == "cpu":
        distributed.share_cpu_cores(ranks)
    return ranks


def refuse_nested(nproc: int) -> None:
    if nproc > 1 and distributed.launched():
        raise UserError("--nproc starts processes itself: under torchrun, leave it out (torchrun's --nproc-per-node sets their number).")

