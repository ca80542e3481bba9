"""Speed benchmark of the real engine: every figure is a ratio against a baseline measured in the same run.

    .venv/bin/python -m tests.bench.bench_speed            # full: 2,000 generated 1600x1200 JPEGs
    .venv/bin/python -m tests.bench.bench_speed --quick    # smoke run, about two minutes on 2 CPU cores

Generates its own data set of photo-like JPEGs (1600x1200, about 300-500 KB each) in a
temporary folder (removed afterwards unless --work names a folder to keep and reuse) and
also uses ../shared/datasets/hymenoptera (beside the repository) when present. It drives
``Trainer`` with ``TrainConfig`` and times it from its own events. Figures:

- intake: scan speed (files/s) and decode-store build speed (images/s per core), each
  against a plain full-resolution Pillow decode of the same files on one core;
- decode once: epoch 1 of a partial fine-tune with the decoded store's build and the caching
  of its frozen stages' output counted in, against epoch 2, which reads both (goal >= 2x);
  also without the prefix cache (decode once alone), and a whole 20-epoch partial fine-tune
  with the prefix cache against the frozen stages run every epoch;
- feature cache: a frozen run with the feature cache (cold: embedding included; warm: an earlier
  run's features; either way the head is then solved by cross-validated logistic regression)
  against 20 epochs re-running the backbone every epoch (``feature_cache=False``), the latter
  measured on a few epochs and extrapolated (goal >= 20x);
- input pipeline: real-data training images/s against the same Trainer, model and batch
  fed one synthetic batch already on the device, partial fine-tune at 160 px with the frozen
  stages run every batch (``feature_cache=False``: the image pipeline) (goal >= 0.8x on the
  CPU, 0.9x on CUDA, where it is also measured with the augmentation on the GPU);
- CUDA only: bf16 + channels_last against fp32 NCHW training images/s for ResNet-50 and
  EfficientNet-B0 (random init), and the GPU's busy fraction in a real-data epoch.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import numpy as np
import PIL
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.bench.machine import OtherLoad  # noqa: E402
from tests.bench.photos import make_photos  # noqa: E402
from tlstudio.core.catalog import backbones as bb  # noqa: E402
from tlstudio.core.catalog.build import build_backbone  # noqa: E402
from tlstudio.core.engine import trainer as training  # noqa: E402
from tlstudio.core.data.augment import PRESETS  # noqa: E402
from tlstudio.core.config import TrainConfig  # noqa: E402
from tlstudio.core.data.scan import scan_folder  # noqa: E402
from tlstudio.core.events import EpochEnded, Failed, PhaseStarted, Progress  # noqa: E402
from tlstudio.core.data.pixel_store import build_pixel_store, default_workers  # noqa: E402
from tlstudio.core.data.preprocess import preprocessing_for  # noqa: E402
from tlstudio.core.engine.trainer import Trainer  # noqa: E402
from tlstudio.core.engine.feeds import ImageLoop, Scores  # noqa: E402

HYMENOPTERA = REPO.parent / "shared" / "datasets" / "hymenoptera"
BACKBONE = "efficientnet_lite0"  # bundled weights: runs offline
PARTIAL = "7"  # stem and stages 1-6 of 9 frozen; stage 7, the head conv and the new head train
PHOTO_SIZE = (1600, 1200)


# ------------------------------------------------------------------------------------ helpers


class Timeline:
    """Wall-clock times of a Trainer run, from its events."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.phase_start: dict[str, float] = {}
        self.phase_last_progress: dict[str, float] = {}
        self.current: str | None = None
        self.epochs: list[EpochEnded] = []
        self.epoch_end: list[float] = []  # when each EpochEnded arrived (its checkpoint already written)
        self.failed: str | None = None

    def __call__(self, event) -> None:
        now = time.perf_counter()
        if isinstance(event, PhaseStarted):
            self.phase_start[event.name] = now
            self.current = event.name
        elif isinstance(event, Progress) and self.current:
            self.phase_last_progress[self.current] = now
        elif isinstance(event, EpochEnded):
            self.epochs.append(event)
            self.epoch_end.append(now)
        elif isinstance(event, Failed):
            self.failed = event.message

    def phase_seconds(self, name: str) -> float:
        """From the phase's start to its last progress report (its end, for decoding and caching)."""
        return self.phase_last_progress[name] - self.phase_start[name]

    def epoch_walls(self) -> list[float]:
        """Wall time of each epoch, checkpoint writing included."""
        starts = [self.phase_start["training"], *self.epoch_end[:-1]]
        return [end - start for start, end in zip(starts, self.epoch_end)]

    def until_last_epoch(self) -> float:
        """From ``Trainer.run`` being called to the end of the last epoch."""
        return self.epoch_end[-1] - self.start


def train(config: TrainConfig, out: Path, cache: Path | None, index=None, pretrained: bool = True, extra_listener=None) -> Timeline:
    timeline = Timeline()

    def listen(event) -> None:
        timeline(event)
        if extra_listener is not None:
            extra_listener(event)

    Trainer(config, out, cache_dir=cache, index=index, pretrained=pretrained).run(listen)
    return timeline


def row(name: str, value: str, note: str = "") -> None:
    print(f"  {name:<62} {value:>9}  {note}", flush=True)


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def subset(src: Path, dst: Path, count: int) -> Path:
    """A folder of hard links to the first ``count`` files of ``src`` (same class layout)."""
    fresh(dst)
    files = sorted(src.glob("*/*.jpg"), key=lambda p: p.name)[:count]
    for f in files:
        (dst / f.parent.name).mkdir(exist_ok=True)
        try:
            os.link(f, dst / f.parent.name / f.name)
        except OSError:
            shutil.copy2(f, dst / f.parent.name / f.name)
    return dst


def cpu_seconds() -> float:
    """CPU time of this process, all threads: less sensitive than wall time to other load on the machine."""
    t = os.times()
    return t.user + t.system


def naive_rate(paths: list[Path], short_side: int | None, threads: int) -> tuple[float, float]:
    """(images/s, CPU seconds per image) of a plain Pillow decode at full resolution (then a resize when
    ``short_side``) on ``threads`` threads, as many as the engine uses, so that other load slows both alike.
    """

    def one(p: Path) -> None:
        with Image.open(p) as im:
            im = im.convert("RGB")
            if short_side:
                w, h = im.size
                s = short_side / min(w, h)
                im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR)
            np.asarray(im)

    t, c = time.perf_counter(), cpu_seconds()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, paths))
    return len(paths) / (time.perf_counter() - t), (cpu_seconds() - c) / len(paths)


# --------------------------------------------------------------------------------- benchmarks


def bench_intake(data: Path, label: str, size: int, sample: int) -> None:
    """Scan and decode-store build against a naive full decode of the same files on as many threads."""
    cores = os.cpu_count() or 1
    threads = default_workers()  # what scan_folder and build_pixel_store use
    t, c = time.perf_counter(), cpu_seconds()
    index = scan_folder(data)
    scan_s, scan_cpu = time.perf_counter() - t, cpu_seconds() - c
    n = len(index.samples)
    paths = [Path(index.root) / s.path for s in index.samples[:: max(1, n // sample)][:sample]]
    with tempfile.TemporaryDirectory() as cache:
        t, c = time.perf_counter(), cpu_seconds()
        store = build_pixel_store(index.root, index.samples, size, cache_dir=cache)
        decode_s, decode_cpu = time.perf_counter() - t, cpu_seconds() - c
        store_mb = store.nbytes / 2**20
        del store
    naive_full, naive_full_cpu = naive_rate(paths, None, threads)
    naive_resize, naive_resize_cpu = naive_rate(paths, size, threads)
    scan_rate, decode_rate = n / scan_s, n / decode_s
    row(
        f"{label}: scan files/s / naive full decode files/s",
        f"{scan_rate / naive_full:.2f}x",
        f"({scan_rate:,.0f} vs {naive_full:,.0f} files/s = {scan_rate / cores:,.0f} vs {naive_full / cores:,.0f} per core; "
        f"by CPU time {naive_full_cpu / (scan_cpu / n):.2f}x: {1e3 * scan_cpu / n:.1f} vs {1e3 * naive_full_cpu:.1f} ms/file; {n} files in {scan_s:.1f} s)",
    )
    row(
        f"{label}: store build at {size}px / naive decode+resize",
        f"{decode_rate / naive_resize:.2f}x",
        f"({decode_rate / cores:,.1f} vs {naive_resize / cores:,.1f} images/s per core; by CPU time {naive_resize_cpu / (decode_cpu / n):.2f}x: "
        f"{1e3 * decode_cpu / n:.1f} vs {1e3 * naive_resize_cpu:.1f} ms/image; {n} images -> {store_mb:,.0f} MiB in {decode_s:.1f} s)",
    )


def partial_config(data: Path, device: str, batch: int, epochs: int, **kw) -> TrainConfig:
    return TrainConfig(
        data_dir=str(data), backbone=BACKBONE, freeze_depth=PARTIAL, image_size=160, epochs=epochs, batch_size=batch,
        augment="light", warm_start_head=False, export=False, device=device, **kw,
    )


def bench_decode_once(data: Path, work: Path, device: str, batch: int) -> Timeline:
    """Epoch 1 (with the decoded store's build, and the frozen prefix's caching) vs epoch 2 of a partial fine-tune,
    with the prefix cache (the default) and without it (``feature_cache=False``: decode once alone).
    Returns the timeline of the run without it: the image pipeline that ``bench_input_bound`` measures."""
    cached = train(partial_config(data, device, batch, 2), fresh(work / "run-decode-once"), fresh(work / "cache-decode-once"))
    decode, caching = cached.phase_seconds("decoding"), cached.phase_seconds("caching features")
    e1, e2 = cached.epochs[0].seconds, cached.epochs[1].seconds
    row(
        "partial fine-tune 160px: epoch 1 incl. store build + prefix cache / epoch 2",
        f"{(decode + caching + e1) / e2:.2f}x",
        f"({decode:.1f} s store build + {caching:.1f} s frozen stages on 2 views + {e1:.1f} s epoch 1 vs {e2:.1f} s epoch 2; goal >= 2x)",
    )
    images = train(partial_config(data, device, batch, 2, feature_cache=False), fresh(work / "run-images"), fresh(work / "cache-images"))
    decode, e1, e2 = images.phase_seconds("decoding"), images.epochs[0].seconds, images.epochs[1].seconds
    row(
        "  without the prefix cache: epoch 1 incl. store build / epoch 2",
        f"{(decode + e1) / e2:.2f}x",
        f"({decode:.1f} s store build + {e1:.1f} s epoch 1 vs {e2:.1f} s epoch 2: decode once alone)",
    )
    row("  store build / epoch 2 without the prefix cache (what decoding each epoch would add)", f"{decode / e2:.2f}x", f"({decode:.1f} s vs {e2:.1f} s)")
    return images


def bench_prefix_cache(data: Path, work: Path, device: str, batch: int, images: Timeline, epochs: int = 20) -> None:
    """A whole partial fine-tune: prefix cache (measured) vs the frozen stages run every epoch (the 2 measured
    epochs of ``images`` extrapolated), both on an already decoded store."""
    cached = train(partial_config(data, device, batch, epochs), fresh(work / "run-prefix"), work / "cache-images")  # store reused
    assert "decoding" not in cached.phase_start
    walls = images.epoch_walls()
    setup = images.phase_start["training"] - images.start - images.phase_seconds("decoding")
    uncached = setup + sum(walls) + (epochs - len(walls)) * walls[-1]
    total = cached.until_last_epoch()
    views = min(PRESETS["light"].views, epochs)
    row(
        f"partial fine-tune 160px, {epochs} epochs: frozen stages every epoch / prefix cache",
        f"{uncached / total:.2f}x",
        f"({uncached:.1f} s, extrapolated from 2 epochs, vs {total:.1f} s measured, of which {cached.phase_seconds('caching features'):.1f} s "
        f"running the frozen stages on {views} views; store prebuilt)",
    )


class InMemoryLoop(ImageLoop):
    """The engine's image loop with its input pipeline replaced by one synthetic uint8 batch already on the device.

    Everything else - model, freezing, memory format, optimiser, scheduler, autocast, the
    training step and its bookkeeping - is the Trainer's own, so the images/s it reports
    is the ceiling the real input pipeline is measured against.
    """

    max_steps = 8

    def __init__(self, ctx, train_rows, val_rows, held_rows=()):
        super().__init__(ctx, train_rows, val_rows, held_rows)
        g = torch.Generator().manual_seed(0)
        s = ctx.pre.input_size
        self.x = torch.randint(0, 256, (ctx.batch_size, 3, s, s), dtype=torch.uint8, generator=g).to(ctx.device)
        self.y = torch.randint(0, len(ctx.classes), (ctx.batch_size,), generator=g).to(ctx.device)

    def steps_per_epoch(self) -> int:
        return min(super().steps_per_epoch(), self.max_steps)

    def train_batches(self, epoch: int):
        for _ in range(self.steps_per_epoch()):
            yield self.x, self.y

    def validate(self):
        return Scores(0.0, 0.0, 0.0)

    def score_selection(self):
        return None

    def predict_rows(self, rows, cached_val):
        return np.full((len(rows), len(self.ctx.classes)), 1.0 / len(self.ctx.classes))


def bench_input_bound(real: Timeline, data: Path, work: Path, device: str, batch: int) -> None:
    """Epoch-2 training images/s of the image pipeline (no prefix cache) vs the same run fed a synthetic in-memory
    batch; on CUDA also with the augmentation run on the GPU (``device_augment``)."""
    with mock.patch.object(training, "ImageLoop", InMemoryLoop):
        synthetic = train(partial_config(data, device, batch, 2, feature_cache=False), fresh(work / "run-synthetic"), work / "cache-images")  # the store is reused
    s = synthetic.epochs[-1].images_per_s
    runs = [("", real)]
    if device == "cuda":
        runs.append((", augmented on the GPU", train(partial_config(data, device, batch, 2, feature_cache=False, device_augment=True), fresh(work / "run-gpu-augment"), work / "cache-images")))
    for label, tl in runs:
        r = tl.epochs[-1].images_per_s
        row(
            f"partial fine-tune 160px{label}: real-data / in-memory images/s",
            f"{r / s:.2f}x",
            f"({r:.1f} vs {s:.1f} images/s, epoch 2, batch {batch}, frozen stages run every batch; goal >= {0.9 if device == 'cuda' else 0.8})",
        )


def bench_feature_cache(data: Path, work: Path, device: str, image_size: int, measured_epochs: int, batch: int) -> None:
    """A frozen run on cached features (cold and warm; the head solved, cross-validation included) vs 20 epochs
    with the backbone run every epoch, extrapolated."""
    epochs = 20
    index = scan_folder(data)
    cache = fresh(work / "cache-features")
    pre = preprocessing_for(bb.get_backbone(BACKBONE), image_size)
    build_pixel_store(index.root, index.samples, pre.resize_size, cache_dir=cache)  # decoding is not what is compared
    base = dict(
        data_dir=str(data), backbone=BACKBONE, freeze_depth="all", image_size=image_size, augment="none",
        batch_size=batch, export=False, device=device,
    )
    cold = train(TrainConfig(**base, epochs=epochs), fresh(work / "run-fc-cold"), cache, index)
    warm = train(TrainConfig(**base, epochs=epochs), fresh(work / "run-fc-warm"), cache, index)
    none = train(TrainConfig(**base, epochs=measured_epochs, feature_cache=False), fresh(work / "run-fc-none"), cache, index)
    assert "caching features" in cold.phase_start and "caching features" not in warm.phase_start, "feature cache was not cold, then warm"

    walls = none.epoch_walls()
    steady = float(np.mean(walls[1:])) if len(walls) > 1 else walls[0]
    uncached = none.until_last_epoch() + (epochs - measured_epochs) * steady
    cold_s, warm_s = cold.until_last_epoch(), warm.until_last_epoch()
    embed_s = cold.phase_seconds("caching features")
    train_rows = sum(1 for s in index.samples if s.split == "train")
    print(f"  ({len(index.samples)} images, {train_rows} train; {image_size}px; augment none; store prebuilt; each time runs from Trainer.run to the end of training)")
    row(
        f"{epochs} frozen epochs, backbone every epoch / cached + solved head, cold",
        f"{uncached / cold_s:.1f}x",
        f"({uncached:.1f} s vs {cold_s:.1f} s, of which {embed_s:.1f} s embedding once)",
    )
    row(f"{epochs} frozen epochs, backbone every epoch / cached + solved head, warm", f"{uncached / warm_s:.1f}x", f"({uncached:.1f} s vs {warm_s:.2f} s; goal >= 20x)")
    print(
        f"  (uncached: {measured_epochs} epochs measured, {', '.join(f'{w:.1f}' for w in walls)} s, "
        f"extrapolated to {epochs} with {steady:.1f} s per epoch after the first)"
    )
    ckpt = work / "run-fc-warm" / "checkpoints"
    sizes = ", ".join(f"{f.name} {f.stat().st_size / 2**20:.1f} MiB" for f in sorted(ckpt.glob("*.pt")))
    for name, tl in (("cold", cold), ("warm", warm)):
        # A frozen backbone's head is solved in one fit (its one history line), not trained for epochs.
        fit_s = tl.epoch_end[0] - tl.phase_start["fitting the head"]
        print(
            f"  (cached {name}: the head's cross-validated fit and its checkpoint took {fit_s:.2f} s ({sizes}); "
            f"setup before it {tl.phase_start['fitting the head'] - tl.start:.2f} s)"
        )


def bench_cuda_precision(batch: int = 128, steps: int = 20) -> None:
    """Full fine-tune step images/s, bf16 autocast + channels_last vs fp32 NCHW, random-init backbones."""
    torch.backends.cudnn.benchmark = True
    for name in ("resnet50", "efficientnet_b0"):
        spec = bb.get_backbone(name)
        rates = {}
        for label, dtype, fmt in (("fp32 NCHW", None, torch.contiguous_format), ("bf16 channels_last", torch.bfloat16, torch.channels_last)):
            model = torch.nn.Sequential(build_backbone(name, pretrained=False), torch.nn.Linear(spec.feature_dim, 10)).cuda().to(memory_format=fmt)
            opt = torch.optim.AdamW(model.parameters())
            x = torch.randn(batch, 3, spec.input_size, spec.input_size, device="cuda").contiguous(memory_format=fmt)
            y = torch.randint(0, 10, (batch,), device="cuda")
            for i in range(steps + 5):
                if i == 5:
                    torch.cuda.synchronize()
                    t = time.perf_counter()
                with torch.autocast("cuda", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                    loss = torch.nn.functional.cross_entropy(model(x).float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            torch.cuda.synchronize()
            rates[label] = batch * steps / (time.perf_counter() - t)
            del model, opt, x, y, loss
            torch.cuda.empty_cache()
        fast, slow = rates["bf16 channels_last"], rates["fp32 NCHW"]
        row(f"{name} full fine-tune {spec.input_size}px: bf16+channels_last / fp32 NCHW", f"{fast / slow:.2f}x", f"({fast:,.0f} vs {slow:,.0f} images/s, batch {batch})")


def _kernel_busy_seconds(prof) -> float:
    """Union of the GPU activity intervals recorded by the profiler, in seconds."""
    from torch.autograd import DeviceType

    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events() if e.device_type == DeviceType.CUDA)
    if not spans:  # older profilers: fall back to summed device time
        return sum(e.self_device_time_total for e in prof.key_averages()) / 1e6
    busy, (lo, hi) = 0.0, spans[0]
    for a, b in spans[1:]:
        if a > hi:
            busy, lo, hi = busy + (hi - lo), a, b
        else:
            hi = max(hi, b)
    return (busy + hi - lo) / 1e6


def bench_gpu_busy(data: Path, work: Path) -> None:
    """Share of epoch 2's wall time (training + validation) the GPU spends executing, ResNet-50 real-data fine-tune."""
    from torch.profiler import ProfilerActivity, profile

    state: dict = {}

    def listener(event) -> None:
        if isinstance(event, EpochEnded) and event.epoch == 1:
            torch.cuda.synchronize()
            state["prof"] = profile(activities=[ProfilerActivity.CUDA])
            state["prof"].__enter__()
            state["t"] = time.perf_counter()
        elif isinstance(event, EpochEnded) and event.epoch == 2:
            torch.cuda.synchronize()
            state["wall"] = time.perf_counter() - state["t"]
            state["prof"].__exit__(None, None, None)

    cfg = TrainConfig(
        data_dir=str(data), backbone="resnet50", freeze_depth="none", epochs=2, batch_size=64, augment="light",
        warm_start_head=False, export=False, device="cuda",
    )
    tl = train(cfg, fresh(work / "run-busy"), fresh(work / "cache-busy"), pretrained=False, extra_listener=listener)
    busy = _kernel_busy_seconds(state["prof"])
    e = tl.epochs[-1]
    row(
        "ResNet-50 real-data full fine-tune, epoch 2: GPU busy / wall",
        f"{busy / state['wall']:.2f}",
        f"({busy:.2f} s GPU activity in {state['wall']:.2f} s; {e.images_per_s:,.0f} images/s, batch 64, {cfg.augment} augment, bf16 autocast)",
    )


# --------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller run: 300 photos, fewer epochs measured, 160px feature-cache run")
    parser.add_argument("--photos", type=int, help="generated 1600x1200 JPEGs for the intake figures (default 2000; --quick 300)")
    parser.add_argument("--train-photos", type=int, help="of those, how many the training runs use (default 500 on the CPU, all on CUDA; --quick 150)")
    parser.add_argument("--work", type=Path, help="a folder to keep (and reuse the generated photos from); default: a temporary folder, removed")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args()

    cuda = args.device != "cpu" and torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    photos = args.photos or (300 if args.quick else 2000)
    train_photos = min(photos, args.train_photos or (150 if args.quick else (photos if cuda else 500)))
    fc_size = 160 if args.quick else 224
    fc_epochs = 2 if args.quick else 3
    batch = 128 if cuda else 32
    sample = 40 if args.quick else 100
    work = args.work or Path(tempfile.mkdtemp(prefix="tlstudio-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)

    started = time.perf_counter()
    cores = os.cpu_count() or 1
    if cuda:
        props = torch.cuda.get_device_properties(0)
        device_text = f"{props.name} ({props.total_memory / 2**30:.0f} GiB), {cores} CPU cores"
    else:
        device_text = f"CPU only: {cores} cores ({platform.processor() or platform.machine()}), {torch.get_num_threads()} torch threads"
    import timm
    import torchvision

    print(f"tlstudio speed benchmark{' (--quick)' if args.quick else ''}")
    print(f"device: {device_text}")
    print(
        f"versions: python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"timm {timm.__version__}, Pillow {PIL.__version__}, numpy {np.__version__}"
    )
    print(
        f"settings: {photos} generated {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEGs (q90, 2 classes), training runs on {train_photos} of them; "
        f"backbone {BACKBONE} (bundled ImageNet weights); partial fine-tune = first {PARTIAL} of 9 stages frozen, 160px, augment light, "
        f"batch {batch}, no head warm start, no export; feature cache: {fc_size}px, {fc_epochs} uncached epochs measured; "
        f"val split 0.2; device {device}; work folder {work}"
    )
    print("note: the generated files are read from the OS page cache (just written), so scan and decode figures exclude disk reads")

    t = time.perf_counter()
    made = make_photos(work / "photos", photos, PHOTO_SIZE)
    print(
        f"(data set {'reused' if made['reused'] else 'generated'} in {time.perf_counter() - t:.0f} s: {made['files']} files, "
        f"mean {made['bytes'] / made['files'] / 1e3:.0f} KB)\n"
    )
    data = work / "photos"
    train_data = data if train_photos == photos else subset(data, work / f"photos-{train_photos}", train_photos)

    whole = OtherLoad()
    section = OtherLoad()

    def end_section() -> None:
        nonlocal section
        print(f"  [{section.text()}]")
        section = OtherLoad()

    print(f"intake (baseline: plain Pillow decode at full resolution of {sample} of the files; {default_workers()} threads on {cores} cores for both)")
    bench_intake(data, "photos", 256, sample)
    if HYMENOPTERA.is_dir():
        bench_intake(HYMENOPTERA, "hymenoptera", 256, sample)
    else:
        print(f"  (hymenoptera skipped: {HYMENOPTERA} is not present)")
    end_section()

    print(f"decode once (baseline: epoch 2; {train_photos} photos)")
    real = bench_decode_once(train_data, work, device, batch)
    end_section()

    print(f"frozen-prefix cache (baseline: the frozen stages run every epoch; {train_photos} photos)")
    bench_prefix_cache(train_data, work, device, batch, real, epochs=5 if args.quick else 20)
    end_section()

    print(f"input pipeline (baseline: the same Trainer fed one synthetic batch already on the {device}, {InMemoryLoop.max_steps} steps per epoch)")
    bench_input_bound(real, train_data, work, device, batch)
    end_section()

    fc_data = HYMENOPTERA if HYMENOPTERA.is_dir() else train_data
    print(f"feature cache on {'hymenoptera' if fc_data == HYMENOPTERA else 'the generated photos'} (baseline: feature_cache=False, the backbone run every epoch)")
    bench_feature_cache(fc_data, work, device, fc_size, fc_epochs, batch)
    end_section()

    if cuda:
        print("CUDA")
        for bench in (bench_cuda_precision, lambda: bench_gpu_busy(data, work)):
            try:
                bench()
            except Exception as exc:  # noqa: BLE001 - report it and keep the figures already printed
                print(f"  failed: {type(exc).__name__}: {exc}")
        end_section()
    else:
        print("CUDA: skipped (no CUDA device): bf16+channels_last vs fp32 and the GPU busy fraction need a GPU")

    print(f"\ntotal {time.perf_counter() - started:.0f} s [{whole.text()}; figures taken under load are not comparable with quiet ones]")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
