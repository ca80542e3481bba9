"""How batches are made and fed to the model: from decoded images, or from cached outputs of frozen layers.

``engine.fit`` owns the optimisation; a feed (``Loop``) only knows its batches, its forward
pass, validation and prediction, so both paths share the one training loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from tlstudio.core.catalog import backbones as bb
from tlstudio.core.data.augment import Augmenter, normalize_batch
from tlstudio.core.catalog.classifier import Classifier
from tlstudio.core.config import TrainConfig
from tlstudio.core.engine.device import default_loader_workers, embedding_batch, fits_on_device
from tlstudio.core.distributed import SINGLE, Ranks, data_parallel
from tlstudio.core.data.device_augment import augment_batch, draw_params
from tlstudio.core.events import StopToken
from tlstudio.core.inference.batches import batched_outputs
from tlstudio.core.catalog.frozen_prefix import run_chain
from tlstudio.core.report.metrics import accuracy_scores
from tlstudio.core.data.pixel_store import PixelStore
from tlstudio.core.data.preprocess import Preprocessing


COMPILE_BACKEND = "inductor"


def steps_per_epoch(pictures: int, batch_size: int) -> int:
    """Batches per epoch; the last, short batch is dropped when there is more than one (a lone last image
    would break BatchNorm in train mode)."""
    return pictures // batch_size if pictures > batch_size else math.ceil(pictures / batch_size)


class EpochSampler(torch.utils.data.Sampler):
    """Shuffled (item, seed) pairs: each item's augmentation seed comes from the main process, so
    results do not depend on the number of DataLoader workers.

    Among several processes (``ranks``), each takes every ``world``-th pair of the epoch's whole
    batches, as ``DistributedSampler`` shards: the ranks' batches of step ``k`` together are the
    batch ``k`` of one process, with the same augmentation seeds, whatever the number of processes."""

    def __init__(self, n: int, seed: int, ranks: Ranks = SINGLE, batch_size: int = 1):
        self.n, self.seed, self.epoch, self.ranks = n, seed, 0, ranks
        # Whole batches only, in equal shares (a lone short batch when the pictures are fewer than one).
        self.used = min(steps_per_epoch(n, batch_size) * batch_size, n - n % ranks.world) if ranks.active else n

    def __len__(self) -> int:
        return self.used // self.ranks.world

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.n)
        seeds = rng.integers(0, 2**63 - 1, size=self.n)
        mine = slice(self.ranks.rank, self.used, self.ranks.world)
        return iter(zip(order[mine].tolist(), seeds[mine].tolist()))


class TrainImages(torch.utils.data.Dataset):
    """Augmented training images; with ``on_device``, the stored squares as they are with the crop, flip and
    jitter drawn for them, for ``augment_batch`` to apply to the whole batch on the training device."""

    def __init__(self, store: PixelStore, rows: Sequence[int], labels: np.ndarray, augmenter: Augmenter, on_device: bool = False):
        self.store, self.rows, self.labels, self.augmenter, self.on_device = store, list(rows), labels, augmenter, on_device
        self.with_positions = False  # also give each item's position in ``rows`` (a distilled run looks up its teacher's logits by it)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item: tuple[int, int]):
        i, seed = item
        square, rng = self.store[self.rows[i]], np.random.default_rng(seed)
        if self.on_device:
            params = draw_params(self.augmenter.preset, self.store.size, self.augmenter.input_size, rng)
            item = (torch.from_numpy(np.array(square)).permute(2, 0, 1), torch.from_numpy(params), int(self.labels[i]))
        else:
            item = (self.augmenter.train_view(square, rng), int(self.labels[i]))
        return (*item, i) if self.with_positions else item


@dataclass
class LoopContext:
    cfg: TrainConfig
    device: torch.device
    amp: Optional[torch.dtype]
    channels_last: bool
    pre: Preprocessing
    store: Optional[PixelStore]  # None until the run is planned and its pictures decoded
    labels: np.ndarray
    classes: list[str]
    model: Classifier
    freeze: bb.FreezePlan
    criterion: nn.Module
    batch_size: int
    stop: StopToken
    distill: Optional[object] = None  # engine.distill.Distillation: the loss also learns the teacher's logits each batch carries
    ranks: Ranks = SINGLE  # the processes training together (``batch_size`` is their global batch)

    @property
    def rank_batch(self) -> int:
        """The images of one step on this process: the global batch divided among the processes."""
        return self.batch_size // self.ranks.world


@dataclass(frozen=True)
class Scores:
    loss: float
    accuracy: float
    balanced_accuracy: float

    def get(self, metric: str) -> float:
        return getattr(self, metric)


class Loop:
    """How batches are made and fed: from images, or from cached outputs of frozen layers.

    A loop trains on the ``fit`` training rows, scores the ``held`` ones (the selection split,
    where the run makes its choices) and the validation rows (only ever measured)."""

    def steps_per_epoch(self) -> int: ...
    def train_batches(self, epoch: int): ...  # (x, y), or (x, y, teacher logits) once ``use_teacher`` was called
    def use_teacher(self, logits_by_row: dict[int, np.ndarray]) -> None: ...  # the teacher's logits of each training row (dataset row -> logits)
    def forward_train(self, x: torch.Tensor) -> torch.Tensor: ...
    def share_gradients(self) -> None: ...  # before the first step of a run of several processes (every rank calls it: DDP)
    def validate(self) -> Scores: ...
    def score_selection(self) -> Optional[Scores]: ...
    def selection_logits(self) -> np.ndarray: ...  # float32 [held, classes], the selection split's rows in order, evaluation crops
    def predict_rows(self, rows: Sequence[int], cached_val: bool) -> np.ndarray: ...


class ImageLoop(Loop):
    def __init__(self, ctx: LoopContext, train_rows: Sequence[int], val_rows: Sequence[int], held_rows: Sequence[int] = ()):
        """Trains on ``train_rows`` (the fit rows), scores ``held_rows`` and ``val_rows`` on their evaluation crops."""
        self.ctx, self.val_rows, self.held_rows = ctx, list(val_rows), list(held_rows)
        self.network: nn.Module = ctx.model
        self.augmenter = Augmenter(ctx.cfg.augment, ctx.pre.input_size, ctx.pre.interpolation)
        workers = ctx.cfg.workers if ctx.cfg.workers is not None else default_loader_workers(ctx.device)
        self.sampler = EpochSampler(len(train_rows), ctx.cfg.seed, ctx.ranks, ctx.batch_size)
        self.train_rows, self.teacher = list(train_rows), None
        dataset = self.dataset = TrainImages(ctx.store, train_rows, ctx.labels[list(train_rows)], self.augmenter, on_device=ctx.cfg.device_augment)
        # A lone last image would break BatchNorm in train mode (a shard holds whole batches only).
        self.drop_last = len(train_rows) > ctx.batch_size and not ctx.ranks.active
        self.loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=ctx.rank_batch,
            sampler=self.sampler,
            num_workers=workers,
            pin_memory=ctx.device.type == "cuda",
            persistent_workers=workers > 0,
            drop_last=self.drop_last,
            # Its own generator: the loader's worker seeds never draw from the global one, whose state a
            # checkpoint restores (with persistent workers they are drawn once, at a resumed run's first epoch too).
            generator=torch.Generator().manual_seed(ctx.cfg.seed),
        )

    def steps_per_epoch(self) -> int:
        return len(self.loader)

    def train_batches(self, epoch: int):
        self.sampler.epoch = epoch
        device = self.ctx.device
        for batch in self.loader:
            if self.teacher is not None:
                *batch, positions = batch
            if self.ctx.cfg.device_augment:
                squares, params, y = batch
                x = augment_batch(squares.to(device, non_blocking=True), params.to(device, non_blocking=True), self.augmenter.input_size)
            else:
                x, y = batch
                x = x.to(device, non_blocking=True)
            if self.teacher is None:
                yield x, y.to(device, non_blocking=True)
            else:
                yield x, y.to(device, non_blocking=True), self.teacher[positions.to(device)]

    def use_teacher(self, logits_by_row: dict[int, np.ndarray]) -> None:
        self.teacher = torch.from_numpy(np.stack([logits_by_row[r] for r in self.train_rows])).float().to(self.ctx.device)
        self.dataset.with_positions = True

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return normalize_batch(x, self.ctx.pre.mean, self.ctx.pre.std, self.ctx.channels_last)

    def compile(self) -> None:
        """Train through ``torch.compile`` (validation and prediction keep the plain model: no recompiles)."""
        self.network = torch.compile(self.network, backend=COMPILE_BACKEND)

    def share_gradients(self) -> None:
        if not self.ctx.ranks.active:
            return
        compiled = self.network is not self.ctx.model
        self.network = data_parallel(self.ctx.model, self.ctx.ranks, self.ctx.device)
        if compiled:
            self.compile()

    def forward_train(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(self._normalise(x))

    def _logits(self, rows: Sequence[int]) -> Iterator[tuple[torch.Tensor, list[int]]]:
        ctx, rows = self.ctx, list(rows)
        ctx.model.eval()

        def batch(span: range) -> torch.Tensor:
            x = torch.stack([self.augmenter.eval_view(ctx.store[rows[i]]) for i in span]).to(ctx.device, non_blocking=True)
            return self._normalise(x)

        for logits, span in batched_outputs(ctx.model, len(rows), embedding_batch(ctx.device, ctx.batch_size), batch, ctx.device, ctx.amp, ctx.stop):
            yield logits, rows[span.start : span.stop]

    def validate(self) -> Scores:
        return score_batches(self.ctx, self._logits(self.val_rows))

    def score_selection(self) -> Optional[Scores]:
        return score_batches(self.ctx, self._logits(self.held_rows)) if self.held_rows else None

    def selection_logits(self) -> np.ndarray:
        return _stacked(self._logits(self.held_rows), len(self.ctx.classes))

    def predict_rows(self, rows, cached_val) -> np.ndarray:
        return np.concatenate([torch.softmax(logits, 1).cpu().numpy() for logits, _ in self._logits(list(rows))])


class CachedLoop(Loop):
    """The trainable rest of the network on cached outputs of its frozen layers: the pooled features of a
    frozen backbone (``suffix`` empty: only the head runs), or a frozen prefix's output (``suffix``: the
    trainable stages, then the head).

    ``train_views`` hold every training row (view 0 is the evaluation crop); ``fit`` and ``held`` are
    positions into them: the rows trained on and the selection split's. Each epoch, every picture
    draws its own view, so no epoch sees one view of every picture (the curves do not swing with it)."""

    def __init__(self, ctx: LoopContext, suffix: tuple[str, ...], train_rows, val_rows, train_views: Sequence[np.ndarray], val_out: np.ndarray,
                 fit: Optional[Sequence[int]] = None, held: Sequence[int] = ()):
        self.ctx, self.suffix = ctx, suffix
        arrays = [*train_views, val_out]
        if fits_on_device(ctx.device, sum(a.nbytes for a in arrays)):
            arrays = [torch.from_numpy(np.array(a)).to(ctx.device) for a in arrays]  # uploaded once, float16 (np.array: a writable copy of the mapped file)
        self.train_views, self.val_out = arrays[:-1], arrays[-1]
        self.train_rows, self.val_rows = list(train_rows), list(val_rows)
        self.train_labels = ctx.labels[self.train_rows]
        self.fit = np.asarray(range(len(self.train_rows)) if fit is None else fit, dtype=np.int64)
        self.held = np.asarray(held, dtype=np.int64)
        self.teacher: Optional[torch.Tensor] = None  # by position in train_rows (rows not trained on: zeros)
        self.rest = self.network = TrainableRest(ctx.model, suffix)

    def steps_per_epoch(self) -> int:
        return steps_per_epoch(len(self.fit), self.ctx.batch_size)

    def _batch(self, array: Union[np.ndarray, torch.Tensor], idx: np.ndarray) -> torch.Tensor:
        if isinstance(array, torch.Tensor):  # already on the device
            x = array[torch.from_numpy(idx).to(array.device)].float()
        else:
            x = torch.from_numpy(np.ascontiguousarray(array[idx])).to(self.ctx.device, non_blocking=True).float()
        return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 and self.ctx.channels_last else x

    def _gather(self, idx: np.ndarray, views: np.ndarray) -> torch.Tensor:
        """Rows ``idx`` (ascending positions), row i from view ``views[i]``."""
        if len(self.train_views) == 1:
            return self._batch(self.train_views[0], idx)
        parts = {int(v): self._batch(self.train_views[int(v)], idx[views == v]) for v in np.unique(views)}
        first = next(iter(parts.values()))
        x = torch.empty((len(idx), *first.shape[1:]), dtype=first.dtype, device=first.device)
        for v, part in parts.items():
            x[torch.from_numpy(np.flatnonzero(views == v)).to(first.device)] = part
        return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 and self.ctx.channels_last else x

    def train_batches(self, epoch: int):
        rng = np.random.default_rng([self.ctx.cfg.seed, epoch])
        order = rng.permutation(self.fit)
        view_of = rng.integers(0, len(self.train_views), size=len(self.train_rows))
        bs, ranks = self.ctx.batch_size, self.ctx.ranks
        for step in range(self.steps_per_epoch()):
            batch = order[step * bs : (step + 1) * bs][ranks.rank :: ranks.world]  # this process's share of the step
            idx = np.sort(batch)  # ascending: a memory-mapped cache is read forwards
            x, y = self._gather(idx, view_of[idx]), torch.from_numpy(self.train_labels[idx]).to(self.ctx.device)
            if self.teacher is None:
                yield x, y
            else:
                yield x, y, self.teacher[torch.from_numpy(idx).to(self.ctx.device)]

    def use_teacher(self, logits_by_row: dict[int, np.ndarray]) -> None:
        width = len(next(iter(logits_by_row.values())))
        rows = [logits_by_row.get(r, np.zeros(width, np.float32)) for r in self.train_rows]
        self.teacher = torch.from_numpy(np.stack(rows)).float().to(self.ctx.device)

    def share_gradients(self) -> None:
        self.network = data_parallel(self.rest, self.ctx.ranks, self.ctx.device)

    def forward_train(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def _outputs(self, array: Union[np.ndarray, torch.Tensor], network, positions: Optional[np.ndarray] = None) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
        ctx = self.ctx
        ctx.model.eval()
        positions = np.arange(len(array)) if positions is None else positions
        batch_size = embedding_batch(ctx.device, ctx.batch_size)
        batches = batched_outputs(network, len(positions), batch_size, lambda span: self._batch(array, positions[span.start : span.stop]), ctx.device, ctx.amp, ctx.stop)
        for out, span in batches:
            yield out, positions[span.start : span.stop]

    def _val_logits(self):
        val_rows = np.asarray(self.val_rows)
        for logits, idx in self._outputs(self.val_out, self.rest):
            yield logits, val_rows[idx]

    def validate(self) -> Scores:
        return score_batches(self.ctx, self._val_logits())

    def score_selection(self) -> Optional[Scores]:
        return self.score_positions(self.held) if len(self.held) else None

    def selection_logits(self) -> np.ndarray:
        return _stacked(self._outputs(self.train_views[0], self.rest, self.held), len(self.ctx.classes))

    def score_positions(self, positions: np.ndarray) -> Scores:
        """Scores of the training rows at ``positions``, on their evaluation crops (view 0)."""
        train_rows = np.asarray(self.train_rows)
        batches = ((logits, train_rows[idx]) for logits, idx in self._outputs(self.train_views[0], self.rest, np.asarray(positions)))
        return score_batches(self.ctx, batches)

    def pooled_features(self) -> np.ndarray:
        """The backbone's pooled features of view 0 (the evaluation crops of the training rows), float32."""
        backbone = self.ctx.model.backbone
        return np.concatenate([f.cpu().numpy() for f, _ in self._outputs(self.train_views[0], lambda x: run_chain(backbone, self.suffix, x))])

    def predict_rows(self, rows, cached_val) -> np.ndarray:
        if cached_val:
            return np.concatenate([torch.softmax(logits, 1).cpu().numpy() for logits, _ in self._val_logits()])
        return ImageLoop(self.ctx, self.train_rows, self.val_rows).predict_rows(rows, cached_val=False)  # the test split is not cached


class TrainableRest(nn.Module):
    """What runs on a frozen prefix's cached output: the trainable stages, then the head (one module, for DDP)."""

    def __init__(self, model: Classifier, suffix: tuple[str, ...]):
        super().__init__()
        self.model, self.suffix = model, suffix

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.head(run_chain(self.model.backbone, self.suffix, x))


def _stacked(batches, classes: int) -> np.ndarray:
    """The logits of ``(logits, rows)`` batches, one float32 array (empty when there are none)."""
    with torch.inference_mode():
        parts = [out.float().cpu().numpy() for out, _ in batches]
    return np.concatenate(parts) if parts else np.zeros((0, classes), dtype=np.float32)


def score_batches(ctx: LoopContext, batches) -> Scores:
    """Mean loss, accuracy and balanced accuracy over ``(logits, rows)`` batches."""
    loss_sum, labels, preds = 0.0, [], []
    with torch.inference_mode():
        for logits, rows in batches:
            y = torch.from_numpy(ctx.labels[rows]).to(ctx.device)
            loss_sum += ctx.criterion(logits.float(), y).item() * y.shape[0]
            labels.append(ctx.labels[rows])
            preds.append(logits.argmax(1).cpu().numpy())
    if not labels:
        return Scores(0.0, 0.0, 0.0)
    labels_, preds_ = np.concatenate(labels), np.concatenate(preds)
    accuracy, balanced = accuracy_scores(labels_, preds_)
    return Scores(loss_sum / len(labels_), accuracy, balanced)
