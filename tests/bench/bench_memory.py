"""Memory benchmark: peak RSS of intake, the decoded pixel store and the feature cache on 20,000 images.

    .venv/bin/python -m tests.bench.bench_memory            # 20,000 generated 320x240 JPEGs, 10 classes
    .venv/bin/python -m tests.bench.bench_memory --quick    # 2,000 of them

Every figure is relative to this process's RSS right after its imports (torch, timm and
tlstudio's core), measured in the same run, and set beside the byte size of what the
phase produces, to show memory stays bounded: the scan keeps small records, never
pixels; the decoded store is held once (in memory when it fits
``pixel_store.default_ram_budget()``, memory-mapped when it does not, which a small
budget forces here); the feature cache holds float16 embeddings.

Peaks come from /proc/self/status: VmHWM (reset before each phase through
/proc/self/clear_refs) for the total, and a 5 ms sampler for RssAnon (heap: numpy
arrays, Python objects) versus RssFile (pages of memory-mapped files, which the kernel
can drop and read again). Resetting VmHWM also resets what ``resource.getrusage``
reports as ru_maxrss, so the lifetime peak printed last is the largest phase peak
(ru_maxrss itself only where the reset is refused). The JPEGs are generated in child
processes, so they do not count here.
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import timm  # noqa: E402,F401 - part of the baseline: the Trainer imports it to build the backbone
import torchvision  # noqa: E402,F401

from tests.bench.machine import OtherLoad, RssSampler, ru_maxrss_bytes, status_kib  # noqa: E402
from tests.bench.photos import make_photos  # noqa: E402
from tlstudio.core.config import TrainConfig  # noqa: E402
from tlstudio.core.data.scan import scan_folder  # noqa: E402
from tlstudio.core.data.pixel_store import build_pixel_store, default_ram_budget, describe  # noqa: E402
from tlstudio.core.engine.trainer import Trainer  # noqa: E402

MiB = 2**20


def mib(n: float) -> str:
    return f"{n / MiB:,.0f} MiB"


def row(name: str, value: str, note: str = "") -> None:
    print(f"  {name:<52} {value:>12}  {note}", flush=True)


class CountingSink:
    """A write-only file that only counts bytes: the size of a pickle without holding it."""

    def __init__(self) -> None:
        self.n = 0

    def write(self, b) -> int:
        self.n += memoryview(b).nbytes
        return self.n


def phase_report(label: str, s: RssSampler, base: dict[str, int], produced: int, what: str) -> int:
    peak = s.peak_total() - base["VmRSS"]
    anon = s.peak.get("RssAnon", 0) - base["RssAnon"]
    file_ = s.peak.get("RssFile", 0) + s.peak.get("RssShmem", 0) - base["RssFile"] - base.get("RssShmem", 0)
    kept = s.end["VmRSS"] - base["VmRSS"]
    ratio = f"{peak / produced:.2f}x" if produced else "-"
    row(
        f"{label}: peak RSS over baseline / {what}",
        ratio,
        f"({mib(peak)} peak vs {mib(produced)}, {mib(peak - produced)} beyond it; heap peak {mib(anon)}, mapped-file peak {mib(file_)}; "
        f"{mib(kept)} held at the phase's end)",
    )
    return peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 images instead of 20,000")
    parser.add_argument("--images", type=int, help="generated JPEGs (default 20000; --quick 2000)")
    parser.add_argument("--store-size", type=int, default=256, help="side of the decoded squares (default 256: what a 224px backbone stores)")
    parser.add_argument("--embed-size", type=int, default=48, help="input size of the feature-cache run (default 48 px, so the CPU embeds 20,000 images in about a minute)")
    parser.add_argument("--small-budget-mib", type=int, default=256, help="RAM budget that forces the memory-mapped store (default 256)")
    parser.add_argument("--work", type=Path, help="a folder to keep (and reuse the generated images from); default: a temporary folder, removed")
    args = parser.parse_args()

    count = args.images or (2000 if args.quick else 20000)
    size, classes = (320, 240), 10
    work = args.work or Path(tempfile.mkdtemp(prefix="tlstudio-membench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    gc.collect()
    base = {k: v * 1024 for k, v in status_kib().items()}
    if not base:
        print("bench_memory needs Linux (/proc/self/status)")
        return 1
    total_ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")

    print(f"tlstudio memory benchmark{' (--quick)' if args.quick else ''}")
    print(f"machine: {os.cpu_count()} CPU cores, {total_ram / 2**30:.1f} GiB RAM; default RAM budget for the decoded store {mib(default_ram_budget())}")
    print(
        f"versions: python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"timm {timm.__version__}, numpy {np.__version__}"
    )
    print(
        f"settings: {count} generated {size[0]}x{size[1]} JPEGs (q85) in {classes} classes; store at {args.store_size}px; "
        f"small budget {args.small_budget_mib} MiB; feature-cache run: efficientnet_lite0 frozen, {args.embed_size}px, augment none, 1 epoch, CPU; "
        f"work folder {work}"
    )
    print(f"baseline after imports: RSS {mib(base['VmRSS'])} (heap {mib(base['RssAnon'])}, mapped files {mib(base['RssFile'])})")

    t = time.perf_counter()
    made = make_photos(work / "images", count, size, classes=classes, quality=85)
    print(
        f"(data set {'reused' if made['reused'] else 'generated'} in {time.perf_counter() - t:.0f} s: {made['files']} files, "
        f"{mib(made['bytes'])} of JPEG, mean {made['bytes'] / made['files'] / 1e3:.1f} KB)\n"
    )
    data, cache = work / "images", work / "cache"
    shutil.rmtree(cache, ignore_errors=True)

    load = OtherLoad()
    t = time.perf_counter()
    with RssSampler() as s:
        index = scan_folder(data)
    n = len(index.samples)
    print(f"scan: {n} images in {time.perf_counter() - t:.1f} s")
    peaks = [phase_report("scan", s, base, made["bytes"], "JPEG bytes on disk")]
    row("scan: index held, bytes per image", f"{(s.end['VmRSS'] - base['VmRSS']) / n:,.0f} B", "(the DatasetIndex: path, label, split, size, mtime, digest, width, height)")

    store_bytes = n * args.store_size * args.store_size * 3
    t = time.perf_counter()
    with RssSampler() as s:
        store = build_pixel_store(index.root, index.samples, args.store_size, cache_dir=cache, ram_budget=args.small_budget_mib * MiB)
    print(f"store, built under the {args.small_budget_mib} MiB budget in {time.perf_counter() - t:.1f} s: {describe(store)}")
    peaks.append(phase_report("store build, memory-mapped", s, base, store.nbytes, "store bytes"))

    sink = CountingSink()
    t = time.perf_counter()
    pickle.dump(store, sink, protocol=pickle.HIGHEST_PROTOCOL)
    row(
        "store pickled (sent to each spawn/forkserver worker)",
        f"{sink.n / store.nbytes:.6f}x",
        f"({sink.n:,} bytes vs {mib(store.nbytes)} store: the cache file's name, each worker maps the file; {time.perf_counter() - t:.1f} s to pickle; DataLoader workers on CUDA receive the Dataset by pickle "
        "where the start method is spawn (Windows, macOS) or forkserver (Python >= 3.14 on Linux))",
    )
    del store
    gc.collect()

    t = time.perf_counter()
    with RssSampler() as s:
        store = build_pixel_store(index.root, index.samples, args.store_size, cache_dir=cache)
    print(f"store, reused from the cache under the default budget in {time.perf_counter() - t:.1f} s: {describe(store)}")
    peaks.append(phase_report("store load, default budget", s, base, store.nbytes, "store bytes"))
    assert store.nbytes == store_bytes
    del store
    gc.collect()

    cfg = TrainConfig(
        data_dir=str(data), backbone="efficientnet_lite0", freeze_depth="all", image_size=args.embed_size, augment="none",
        epochs=1, export=False, device="cpu",
    )
    t = time.perf_counter()
    with RssSampler() as s:
        result = Trainer(cfg, work / "run", cache_dir=cache, index=index).run()
    arrays = [np.load(f, mmap_mode="r") for f in (cache / "features").glob("*.npy")]  # one view of the training rows, and the validation crops
    feature_bytes = sum(a.nbytes for a in arrays)
    shape = tuple(sorted((a.shape for a in arrays), reverse=True))
    del arrays
    pixels = sorted((cache / "pixels").glob("*.u8"), key=lambda p: p.stat().st_mtime)[-1].stat().st_size
    print(
        f"feature-cache run in {time.perf_counter() - t:.1f} s (val accuracy {result.summary['val_accuracy']:.3f}): "
        f"store {mib(pixels)} at {round(args.embed_size * 256 / 224)}px, features train {shape[0]} + val {shape[1]} float16 = {mib(feature_bytes)}"
    )
    peaks.append(phase_report("Trainer, frozen + feature cache", s, base, pixels + feature_bytes, "store + features"))

    lifetime = max(peaks) if s.hwm_reset else ru_maxrss_bytes() - base["VmRSS"]
    print(f"\nlifetime peak RSS over baseline: {mib(lifetime)} ({'largest phase VmHWM' if s.hwm_reset else 'ru_maxrss'}); largest store {mib(store_bytes)}")
    print(f"[{load.text()}]")
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
