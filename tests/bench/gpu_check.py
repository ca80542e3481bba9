"""GPU check: every CUDA figure the benchmarks measure, in one run of a few minutes (see gpu_check.sh).

    PYTHONPATH=. python3 -m tests.bench.gpu_check [--budget S] [--json PATH] [--cpu-smoke]

Everything runs from the source tree on generated JPEGs with randomly initialised torchvision
backbones: no GUI packages, no weights files, nothing beside the repository. Parts, each timed
and skipped (with the reason printed) when the time budget left is below its estimate:

- precision: full fine-tune step images/s, bf16 autocast + channels_last vs fp32 NCHW, for ResNet-50 and
  EfficientNet-B0 (``bench_speed.bench_cuda_precision``'s measurement, shorter);
- auto batch: the batch size the Trainer chooses for ``batch_size=0`` (``engine.batch_size.choose_batch_size``),
  ResNet-50 full fine-tune, read from its plan before any training;
- input pipeline: the Trainer's epoch-2 training images/s on the generated JPEGs vs the same run fed one synthetic
  batch already on the device (``bench_speed.InMemoryLoop``), partial fine-tune of EfficientNet-B0; on CUDA also
  with the augmentation on the GPU;
- busy: share of a ResNet-50 real-data epoch's wall time the GPU spends executing kernels (CUDA profiler);
- ddp: ``tlstudio train --nproc 2`` vs ``--nproc 1`` images/s on the same folder (history.jsonl), with 2+ GPUs.

``--cpu-smoke`` runs the same code at tiny sizes on the CPU (fp32 only; what needs CUDA is skipped with its
reason), so that the check cannot rot. ``--json PATH`` writes the summary (every part, its status and figures).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional
from unittest import mock

import torch

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.bench.bench_speed import InMemoryLoop, Timeline, _kernel_busy_seconds, fresh, train  # noqa: E402
from tests.bench.photos import make_photos  # noqa: E402
from tlstudio.core import atomic  # noqa: E402
from tlstudio.core.catalog import backbones as bb  # noqa: E402
from tlstudio.core.catalog.build import build_backbone  # noqa: E402
from tlstudio.core.config import TrainConfig  # noqa: E402
from tlstudio.core.engine import trainer as training  # noqa: E402
from tlstudio.core.engine.device import autocast_dtype, describe_device, precision_name, resolve_device  # noqa: E402
from tlstudio.core.engine.plan import PlanMade  # noqa: E402
from tlstudio.core.engine.trainer import Trainer  # noqa: E402
from tlstudio.core.events import EpochEnded, StopToken  # noqa: E402

OK, SKIPPED, FAILED = "ok", "skipped", "failed"
CUDA_MODE, SMOKE_MODE, NO_CUDA = "cuda", "cpu-smoke", "no-cuda"  # the JSON summary's "mode"
PRECISION_MODELS = ("resnet50", "efficientnet_b0")
PIPELINE_BACKBONE, PIPELINE_FREEZE = "efficientnet_b0", "7"  # stem and stages 1-6 of 9 frozen: the input pipeline is what is measured
BUSY_BACKBONE = "resnet50"


@dataclass(frozen=True)
class Sizes:
    """How big each measurement is: a few seconds each on one GPU, a tiny run on the CPU."""

    photos: int
    photo_size: tuple[int, int]
    precision_batch: int
    precision_steps: int
    precision_warmup: int
    precision_image: Optional[int]  # None: each backbone's own input size
    pipeline_image: int
    pipeline_batch: int
    busy_batch: int
    train_image: Optional[int]  # auto batch, busy and ddp runs; None: the backbone's own
    ddp_batch: int
    ddp_epochs: int
    estimates: dict  # seconds each part is expected to take, checked against the budget left


GPU = Sizes(
    photos=2048, photo_size=(400, 300), precision_batch=128, precision_steps=30, precision_warmup=5, precision_image=None,
    pipeline_image=160, pipeline_batch=128, busy_batch=64, train_image=None, ddp_batch=128, ddp_epochs=3,
    estimates={"precision": 40, "auto_batch": 20, "input_pipeline": 60, "busy": 40, "ddp": 120},
)
SMOKE = Sizes(
    photos=24, photo_size=(80, 60), precision_batch=2, precision_steps=2, precision_warmup=1, precision_image=64,
    pipeline_image=64, pipeline_batch=8, busy_batch=8, train_image=64, ddp_batch=8, ddp_epochs=1,
    estimates={"precision": 10, "auto_batch": 5, "input_pipeline": 20, "busy": 15, "ddp": 20},
)


@dataclass
class Figure:
    value: float
    unit: str
    note: str = ""


@dataclass
class Part:
    name: str
    status: str = OK
    reason: str = ""  # why it was skipped, how it failed, or what an ok part left out here
    seconds: float = 0.0
    figures: dict[str, Figure] = field(default_factory=dict)

    def add(self, name: str, value: float, unit: str, note: str = "") -> None:
        self.figures[name] = Figure(round(float(value), 4), unit, note)
        print(f"  {name:<52} {value:>12,.3f} {unit:<9} {note}", flush=True)


class Skip(Exception):
    """A part (or the rest of one) that cannot run here; the message says why."""


@dataclass
class Context:
    device: torch.device
    sizes: Sizes
    work: Path
    data: Path
    gpus: int

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def device_name(self) -> str:
        return "cuda" if self.cuda else "cpu"

    def run_dir(self, name: str) -> Path:
        return fresh(self.work / "runs" / name)

    @property
    def cache(self) -> Path:
        """One cache for every run: runs of the same images and size share the decoded store."""
        path = self.work / "cache"
        path.mkdir(parents=True, exist_ok=True)
        return path


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------------- parts


def step_images_per_s(name: str, ctx: Context, amp: Optional[torch.dtype], memory_format: torch.memory_format) -> float:
    """Training-step images/s of a random-init backbone plus a linear head on one random batch kept on the device."""
    s, spec = ctx.sizes, bb.get_backbone(name)
    size = s.precision_image or spec.input_size
    model = torch.nn.Sequential(build_backbone(name, pretrained=False), torch.nn.Linear(spec.feature_dim, 10)).to(ctx.device).to(memory_format=memory_format)
    opt = torch.optim.AdamW(model.parameters())
    x = torch.randn(s.precision_batch, 3, size, size, device=ctx.device).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (s.precision_batch,), device=ctx.device)
    for i in range(s.precision_warmup + s.precision_steps):
        if i == s.precision_warmup:
            sync(ctx.device)
            started = time.perf_counter()
        with torch.autocast(ctx.device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(ctx.device)
    rate = s.precision_batch * s.precision_steps / (time.perf_counter() - started)
    del model, opt, x, y, loss
    if ctx.cuda:
        torch.cuda.empty_cache()
    return rate


def part_precision(ctx: Context, part: Part) -> None:
    """bf16 + channels_last vs fp32 NCHW; on the CPU fp32 channels_last stands in for the fast arm (bf16 autocast is CUDA-only here)."""
    torch.backends.cudnn.benchmark = True
    fast_amp = torch.bfloat16 if ctx.cuda else None
    fast = "bf16_channels_last" if ctx.cuda else "fp32_channels_last"
    for name in PRECISION_MODELS:
        slow_rate = step_images_per_s(name, ctx, None, torch.contiguous_format)
        fast_rate = step_images_per_s(name, ctx, fast_amp, torch.channels_last)
        note = f"batch {ctx.sizes.precision_batch}, {ctx.sizes.precision_steps} steps"
        part.add(f"{name}_fp32_nchw_images_per_s", slow_rate, "images/s", note)
        part.add(f"{name}_{fast}_images_per_s", fast_rate, "images/s", note)
        part.add(f"{name}_{fast}_over_fp32", fast_rate / slow_rate, "x")
    if not ctx.cuda:
        part.reason = "bf16 autocast runs on CUDA only: the fast arm here is fp32 channels_last"


def part_auto_batch(ctx: Context, part: Part) -> None:
    """The Trainer's own choice for batch_size=0 (the largest that fits; fixed on the CPU), stopped once its plan is made."""
    cfg = TrainConfig(
        data_dir=str(ctx.data), backbone=BUSY_BACKBONE, freeze_depth="none", epochs=1, batch_size=0, image_size=ctx.sizes.train_image,
        augment="light", warm_start_head=False, export=False, device=ctx.device_name,
    )
    stop, plans = StopToken(), []

    def listen(event) -> None:
        if isinstance(event, PlanMade):
            plans.append(event.plan)
            stop.stop()

    Trainer(cfg, ctx.run_dir("auto-batch"), cache_dir=ctx.cache, pretrained=False).run(listen, stop)
    if not plans:
        raise RuntimeError("the Trainer made no plan")
    size = ctx.sizes.train_image or bb.get_backbone(BUSY_BACKBONE).input_size
    part.add(f"{BUSY_BACKBONE}_auto_batch_size", plans[0].batch_size, "images", f"full fine-tune {size}px, {describe_device(ctx.device)}")


def pipeline_config(ctx: Context, **kw) -> TrainConfig:
    s = ctx.sizes
    return TrainConfig(
        data_dir=str(ctx.data), backbone=PIPELINE_BACKBONE, freeze_depth=PIPELINE_FREEZE, image_size=s.pipeline_image, epochs=2,
        batch_size=s.pipeline_batch, augment="light", warm_start_head=False, export=False, device=ctx.device_name, feature_cache=False, **kw,
    )


def last_epoch_rate(timeline: Timeline) -> float:
    if timeline.failed or not timeline.epochs:
        raise RuntimeError(f"the run did not finish an epoch: {timeline.failed or 'no epoch ended'}")
    return timeline.epochs[-1].images_per_s


def part_input_pipeline(ctx: Context, part: Part) -> None:
    """Real-data vs in-memory epoch-2 images/s of the same Trainer, model and batch (frozen stages run every batch)."""
    real = last_epoch_rate(train(pipeline_config(ctx), ctx.run_dir("pipeline-real"), ctx.cache, pretrained=False))
    with mock.patch.object(training, "ImageLoop", InMemoryLoop):
        memory = last_epoch_rate(train(pipeline_config(ctx), ctx.run_dir("pipeline-memory"), ctx.cache, pretrained=False))
    note = f"{PIPELINE_BACKBONE} first {PIPELINE_FREEZE} stages frozen (random init), {ctx.sizes.pipeline_image}px, batch {ctx.sizes.pipeline_batch}, epoch 2"
    part.add("real_data_images_per_s", real, "images/s", note)
    part.add("in_memory_images_per_s", memory, "images/s", f"{InMemoryLoop.max_steps} steps of one batch on the device")
    part.add("real_over_in_memory", real / memory, "x", f"goal >= {0.9 if ctx.cuda else 0.8}")
    if not ctx.cuda:
        part.reason = "augmentation on the GPU needs CUDA: its arm is left out"
        return
    gpu_aug = last_epoch_rate(train(pipeline_config(ctx, device_augment=True), ctx.run_dir("pipeline-gpu-augment"), ctx.cache, pretrained=False))
    part.add("gpu_augment_real_data_images_per_s", gpu_aug, "images/s", "augmentation on the GPU")
    part.add("gpu_augment_real_over_in_memory", gpu_aug / memory, "x")


def part_busy(ctx: Context, part: Part) -> None:
    """GPU kernel time / wall time of epoch 2 (training + validation) of a ResNet-50 real-data full fine-tune."""
    if not ctx.cuda:
        raise Skip("the GPU busy fraction is read from the CUDA profiler's kernel timeline: it needs a CUDA device")
    from torch.profiler import ProfilerActivity, profile

    state: dict = {}

    def listen(event) -> None:
        if isinstance(event, EpochEnded) and event.epoch == 1:
            sync(ctx.device)
            state["prof"] = profile(activities=[ProfilerActivity.CUDA])
            state["prof"].__enter__()
            state["t"] = time.perf_counter()
        elif isinstance(event, EpochEnded) and event.epoch == 2:
            sync(ctx.device)
            state["wall"] = time.perf_counter() - state["t"]
            state["prof"].__exit__(None, None, None)

    cfg = TrainConfig(
        data_dir=str(ctx.data), backbone=BUSY_BACKBONE, freeze_depth="none", epochs=2, batch_size=ctx.sizes.busy_batch,
        image_size=ctx.sizes.train_image, augment="light", warm_start_head=False, export=False, device=ctx.device_name,
    )
    rate = last_epoch_rate(train(cfg, ctx.run_dir("busy"), ctx.cache, pretrained=False, extra_listener=listen))
    busy = _kernel_busy_seconds(state["prof"])
    part.add("resnet50_real_data_gpu_busy_fraction", busy / state["wall"], "fraction", f"{busy:.2f} s kernels in {state['wall']:.2f} s, epoch 2")
    part.add("resnet50_real_data_images_per_s", rate, "images/s", f"batch {ctx.sizes.busy_batch}, full fine-tune, {precision_name(autocast_dtype(ctx.device, 'auto'))} autocast")


def ddp_command(ctx: Context, nproc: int, out: Path) -> list[str]:
    s = ctx.sizes
    cmd = [
        sys.executable, "-m", "tlstudio", "train", str(ctx.data), "--out", str(out), "--nproc", str(nproc), "--from-scratch",
        "--backbone", BUSY_BACKBONE, "--epochs", str(s.ddp_epochs), "--batch-size", str(s.ddp_batch), "--no-export",
        "--device", ctx.device_name, "--cache", str(ctx.cache),
    ]
    if s.train_image:
        cmd += ["--image-size", str(s.train_image)]
    return cmd


def history_images_per_s(run: Path) -> float:
    """The last epoch's images/s (global over all processes) from the run's history.jsonl."""
    lines = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines() if line.strip()]
    rates = [line["images_per_s"] for line in lines if "images_per_s" in line]
    if not rates:
        raise RuntimeError(f"{run / 'history.jsonl'} has no images_per_s line")
    return float(rates[-1])


def train_processes(ctx: Context, nproc: int, deadline: float) -> float:
    out = ctx.work / "runs" / f"ddp-{nproc}"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    timeout = max(1.0, deadline - time.perf_counter())
    done = subprocess.run(ddp_command(ctx, nproc, out), cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"'tlstudio train --nproc {nproc}' exited {done.returncode}: {' | '.join(tail)}")
    return history_images_per_s(out)


def part_ddp(ctx: Context, part: Part, deadline: float) -> None:
    """Images/s of 2 processes (one GPU each) over 1, same folder and global batch; on fewer GPUs only the 1-process arm runs."""
    one = train_processes(ctx, 1, deadline)
    note = f"{BUSY_BACKBONE} from scratch, global batch {ctx.sizes.ddp_batch}, epoch {ctx.sizes.ddp_epochs}"
    part.add("ddp_1_process_images_per_s", one, "images/s", note)
    if ctx.gpus < 2:
        part.reason = f"2-GPU scaling needs two CUDA devices, this machine has {ctx.gpus}: only the 1-process run was measured"
        print(f"  ({part.reason})")
        return
    two = train_processes(ctx, 2, deadline)
    part.add("ddp_2_process_images_per_s", two, "images/s", note)
    part.add("ddp_2_over_1_process", two / one, "x", "ideal 2.0")


# -------------------------------------------------------------------------------------------- run


class Budget:
    def __init__(self, seconds: float) -> None:
        self.seconds, self.started = seconds, time.perf_counter()

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.started)

    @property
    def deadline(self) -> float:
        return self.started + self.seconds


def run_part(name: str, body: Callable[[Part], None], estimate: float, budget: Budget) -> Part:
    part = Part(name)
    print(f"{name}", flush=True)
    if budget.left() < estimate:
        part.status, part.reason = SKIPPED, f"{budget.left():.0f} s of the budget left, the part needs about {estimate:.0f} s"
        print(f"  skipped: {part.reason}")
        return part
    started = time.perf_counter()
    try:
        body(part)
    except Skip as why:
        part.status, part.reason = SKIPPED, str(why)
        print(f"  skipped: {why}")
    except Exception as exc:  # noqa: BLE001 - report it, keep the figures already measured and go on
        part.status, part.reason = FAILED, f"{type(exc).__name__}: {exc}"
        print(f"  failed: {part.reason}")
    part.seconds = round(time.perf_counter() - started, 2)
    print(f"  [{part.seconds:.1f} s]", flush=True)
    return part


def identity(device: torch.device) -> dict:
    import torchvision

    out = {
        "python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
        "cuda_runtime": torch.version.cuda, "device": str(device), "device_description": describe_device(device),
        "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0, "cpu_cores": os.cpu_count(),
    }
    if device.type == "cuda":
        out["bf16_supported"] = torch.cuda.is_bf16_supported()
    return out


def summary_table(parts: list[Part]) -> str:
    lines = [f"{'part':<15} {'figure':<46} {'value':>12}  unit", "-" * 84]
    for p in parts:
        for name, f in p.figures.items():
            lines.append(f"{p.name:<15} {name:<46} {f.value:>12,.3f}  {f.unit}")
        if p.status != OK or p.reason:
            lines.append(f"{p.name:<15} ({p.status}{': ' + p.reason if p.reason else ''})")
    return "\n".join(lines)


def check(device: torch.device, sizes: Sizes, budget: Budget, work: Path) -> list[Part]:
    t = time.perf_counter()
    made = make_photos(work / "photos", sizes.photos, sizes.photo_size, workers=min(16, os.cpu_count() or 1))
    print(f"data: {made['files']} generated {sizes.photo_size[0]}x{sizes.photo_size[1]} JPEGs, 2 classes, in {time.perf_counter() - t:.1f} s\n")
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    ctx = Context(device, sizes, work, work / "photos", gpus)
    est = sizes.estimates
    return [
        run_part("precision", lambda p: part_precision(ctx, p), est["precision"], budget),
        run_part("auto_batch", lambda p: part_auto_batch(ctx, p), est["auto_batch"], budget),
        run_part("input_pipeline", lambda p: part_input_pipeline(ctx, p), est["input_pipeline"], budget),
        run_part("busy", lambda p: part_busy(ctx, p), est["busy"], budget),
        run_part("ddp", lambda p: part_ddp(ctx, p, budget.deadline), est["ddp"], budget),
    ]


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true", help="the same code paths at tiny sizes on the CPU (no GPU needed)")
    parser.add_argument("--budget", type=float, default=None, help="total seconds for all parts (default 270 on a GPU, 120 for --cpu-smoke)")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary as JSON to this file")
    parser.add_argument("--work", type=Path, default=None, help="a folder to keep the generated data and runs in (default: a temporary one, removed)")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    if not args.cpu_smoke and not torch.cuda.is_available():
        print("gpu check: no CUDA device on this machine: nothing to measure (run with --cpu-smoke to exercise the code on the CPU).")
        if args.json:
            atomic.write_json(args.json, {"mode": NO_CUDA, "identity": identity(torch.device("cpu")), "parts": []})
        return 0
    device = resolve_device("cpu" if args.cpu_smoke else "cuda")
    sizes = SMOKE if args.cpu_smoke else GPU
    budget = Budget(args.budget or (120.0 if args.cpu_smoke else 270.0))
    torch.manual_seed(0)
    who = identity(device)
    print(f"gpu check{' (--cpu-smoke)' if args.cpu_smoke else ''}: {who['device_description']}; torch {who['torch']}, CUDA {who['cuda_runtime']}, {who['gpus']} GPU(s); budget {budget.seconds:.0f} s")
    work = args.work or Path(tempfile.mkdtemp(prefix="tlstudio-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        parts = check(device, sizes, budget, work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = round(time.perf_counter() - budget.started, 1)
    print(f"\nsummary ({elapsed:.0f} s of {budget.seconds:.0f})\n{summary_table(parts)}")
    if args.json:
        report = {"mode": SMOKE_MODE if args.cpu_smoke else CUDA_MODE, "identity": who, "budget_s": budget.seconds, "elapsed_s": elapsed, "parts": [asdict(p) for p in parts]}
        atomic.write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
