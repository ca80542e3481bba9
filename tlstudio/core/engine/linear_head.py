"""A head on frozen features is a convex problem: multinomial logistic regression, solved to convergence.

``fit_linear_head`` standardises the features (statistics of the training rows only),
chooses the L2 strength and the class weighting by cross-validation on the training
pictures (folds grouped by picture, so the views of one picture never sit on both sides),
on the run's selection metric, then refits on every training row. Every cached view of a
picture is a row; held-out pictures are scored on their evaluation crop (view 0), as the
validation pictures are.

Class weighting candidates: ``none``; ``balanced`` (each class weighs the same in the loss);
``prior`` (the unweighted fit with the training class prior taken out of the logits, a
"logit adjustment" that costs no extra fit). Each fit is full-batch L-BFGS with a strong
Wolfe line search, warm-started along the path from the strongest L2 to the weakest, which
stops once the metric has not improved for ``PATIENCE`` strengths.

The result is folded into one ``nn.Linear`` on the raw features (standardisation and prior
correction included), so the exported model is the same backbone + linear head as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tlstudio.core.engine.class_balance import WEIGHTINGS, balanced_class_weights, imbalance_ratio, log_prior
from tlstudio.core.events import StopToken
from tlstudio.core.report.metrics import accuracy_scores
from tlstudio.core.engine.selection import FOLDS, grouped_folds

GRID = (10.0, 3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001, 3e-4, 1e-4)  # per-row L2 strength, strongest first
PATIENCE = 2
MAX_ITER = 500
GRAD_TOL = 1e-5  # the refit's: the head the run keeps
CV_TOL = 3e-4  # cross-validation's: enough to rank the settings, in a third of the iterations
LARGE = 2000  # from this many pictures, 3 folds instead of 5 (each fold still holds hundreds of pictures)
EVEN_CLASSES = 1.1  # at most this ratio between the largest and smallest class: weighting cannot matter

OnProgress = Callable[[int, int], None]  # (fits done, fits planned)


@dataclass(frozen=True)
class Candidate:
    weighting: str
    l2: float
    accuracy: float
    balanced_accuracy: float
    log_loss: float

    def score(self, metric: str) -> tuple[float, float]:
        """Higher is better: the metric, then (on a tie) the lower log-loss."""
        return (round(getattr(self, metric), 9), -self.log_loss)


@dataclass
class LinearHead:
    weight: np.ndarray  # (classes, features) float32, on the raw (unstandardised) features
    bias: np.ndarray  # (classes,) float32
    weighting: str
    l2: float
    metric: str
    candidates: list[Candidate]
    oof_probs: np.ndarray  # (pictures, classes): out-of-fold probabilities of each training picture's evaluation crop
    train_accuracy: float  # the refitted head on the training pictures' evaluation crops
    rows: int  # rows of the refit: pictures x views
    views: int
    folds: int
    converged: bool
    seconds: float = 0.0

    @property
    def chosen(self) -> Candidate:
        return next(c for c in self.candidates if c.weighting == self.weighting and c.l2 == self.l2)

    def load_into(self, linear: nn.Linear) -> None:
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(self.weight))
            linear.bias.copy_(torch.from_numpy(self.bias))

    def to_summary(self) -> dict:
        chosen = self.chosen
        return {
            "solver": "L-BFGS, multinomial logistic regression",
            "class_weighting": self.weighting,
            "l2": self.l2,
            "metric": self.metric,
            "cv_accuracy": chosen.accuracy,
            "cv_balanced_accuracy": chosen.balanced_accuracy,
            "train_accuracy": self.train_accuracy,
            "folds": self.folds,
            "rows": self.rows,
            "views": self.views,
            "converged": self.converged,
            "seconds": round(self.seconds, 2),
            "candidates": [c.__dict__ for c in self.candidates],
        }


def weightings_to_try(requested: str, labels: np.ndarray, num_classes: int) -> tuple[str, ...]:
    """``auto``: every weighting, unless the classes are even (then they all fit the same head)."""
    if requested == "auto":
        return ("none",) if imbalance_ratio(labels, num_classes) <= EVEN_CLASSES else WEIGHTINGS
    return (requested,)


def balanced_row_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return balanced_class_weights(labels, num_classes)[labels]


# ----------------------------------------------------------------------------------- the solver
#
# The rows are stored once, sorted by fold, so the rows a fit sees are one or two contiguous slices
# (every fold but one) and nothing is copied. Each fit's standardisation (of the rows it sees) lives in
# ``mean``/``std`` and is applied to the parameters (``x @ (W / std) + b - (mean / std) @ W``) instead
# of to a standardised copy of the data.

CHUNK = 1024  # rows per gradient product: the CPU's BLAS runs G.T @ x three times faster in cache-sized slices


@dataclass
class _Problem:
    """One fit: the row slices it sees, their weights (summing to 1) and their standardisation."""

    segments: list[tuple[int, int]]
    w: list[torch.Tensor]  # per segment
    mean: torch.Tensor
    std: torch.Tensor

    def raw(self, W: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The (classes, d) weights and bias that act on raw features."""
        scaled = W / self.std
        return scaled, b - scaled @ self.mean

    def logits(self, x: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.linear(x, *self.raw(W, b))


def _moments(x: torch.Tensor, segments: Sequence[tuple[int, int]], chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of the rows in ``segments``, accumulated in float64 by chunks."""
    total = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    squares = torch.zeros_like(total)
    count = 0
    for a, b in segments:
        for start in range(a, b, chunk):
            part = x[start : min(b, start + chunk)].double()
            total += part.sum(0)
            squares += part.pow(2).sum(0)
        count += b - a
    mean = total / max(1, count)
    std = (squares / max(1, count) - mean.pow(2)).clamp_min(0).sqrt()
    return mean.float(), torch.where(std > 1e-6, std, torch.ones_like(std)).float()


def _problem(x: torch.Tensor, y: np.ndarray, segments: list[tuple[int, int]], weighting: str, num_classes: int) -> _Problem:
    seen = np.concatenate([y[a:b] for a, b in segments])
    w = balanced_row_weights(seen, num_classes) if weighting == "balanced" else np.ones(len(seen))
    w = torch.from_numpy(w / w.sum()).float().to(x.device)
    bounds = np.cumsum([0] + [b - a for a, b in segments])
    mean, std = _moments(x, segments)
    return _Problem(segments, [w[bounds[i] : bounds[i + 1]] for i in range(len(segments))], mean, std)


@torch.no_grad()
def loss_and_gradient(x: torch.Tensor, y: torch.Tensor, problem: _Problem, l2: float, W: torch.Tensor, b: torch.Tensor):
    """The objective and its exact gradient, by hand (autograd's backward of ``x @ W`` runs the slow
    transposed product on the whole matrix)."""
    scaled, c = problem.raw(W, b)
    loss = 0.5 * l2 * W.double().pow(2).sum()  # float64: the line search compares losses that differ by less than float32 resolves
    grad = torch.zeros_like(W)
    g_sum = torch.zeros_like(b)
    for (a, end), w in zip(problem.segments, problem.w):
        xs, ys = x[a:end], y[a:end]
        log_p = torch.log_softmax(F.linear(xs, scaled, c), 1)
        loss = loss - (w.double() * log_p.gather(1, ys[:, None]).squeeze(1).double()).sum()
        G = log_p.exp_()
        G[torch.arange(len(ys), device=x.device), ys] -= 1
        G *= w[:, None]
        for start in range(0, len(ys), CHUNK):
            grad.addmm_(G[start : start + CHUNK].t(), xs[start : start + CHUNK])
        g_sum += G.sum(0)
    grad_scaled = grad - g_sum[:, None] * problem.mean
    return loss, grad_scaled / problem.std + l2 * W, g_sum


def solve(x: torch.Tensor, y: torch.Tensor, problem: _Problem, l2: float, start: tuple[torch.Tensor, torch.Tensor], stop: StopToken, tol: float = GRAD_TOL):
    """Minimise the weighted mean cross-entropy + l2/2 |W|^2 (W (classes, d) in standardised units; the bias
    is not penalised). Returns W, b and whether the gradient reached the tolerance."""
    W, b = start[0].clone(), start[1].clone()
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=MAX_ITER, tolerance_grad=tol, tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        stop.check()
        loss, W.grad, b.grad = loss_and_gradient(x, y, problem, l2, W, b)
        return loss

    opt.step(closure)
    closure()
    worst = max(float(W.grad.abs().max()), float(b.grad.abs().max()))
    return W, b, worst <= 10 * tol


# ----------------------------------------------------------------------------------- cross-validation


@dataclass
class _Fold:
    problems: dict[str, _Problem]  # per fitted weighting ("none", "balanced")
    held: torch.Tensor  # the rows of the held-out pictures' evaluation crops (view 0)
    held_pictures: np.ndarray
    prior: torch.Tensor  # log prior of the in-fold pictures
    warm: dict[str, tuple[torch.Tensor, torch.Tensor]]  # the last solution per weighting: the next fit's start
    at: dict[tuple[str, float], tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)


@dataclass
class _Data:
    """Every row of the fit, sorted by fold: fold f's rows are ``x[bounds[f]:bounds[f + 1]]``."""

    x: torch.Tensor  # (views * pictures, d) raw features
    y: torch.Tensor
    row_labels: np.ndarray
    row_picture: np.ndarray
    row_view: np.ndarray
    bounds: np.ndarray  # (folds + 1,)
    labels: np.ndarray  # per picture
    num_classes: int

    @property
    def pictures(self) -> int:
        return len(self.labels)

    def outside(self, f: int) -> list[tuple[int, int]]:
        """The row slices of every fold but ``f``."""
        lo, hi, end = int(self.bounds[f]), int(self.bounds[f + 1]), int(self.bounds[-1])
        return [s for s in ((0, lo), (hi, end)) if s[1] > s[0]]


def _fitted(weightings: Sequence[str]) -> list[str]:
    """The weightings that need fits of their own: ``prior`` reuses the unweighted fits."""
    return sorted({"none" if w == "prior" else w for w in weightings}, key=WEIGHTINGS.index)


def fit_linear_head(
    views: Sequence[np.ndarray],
    labels: np.ndarray,
    digests: Sequence[str],
    num_classes: int,
    *,
    class_weights: str = "auto",
    metric: str = "balanced_accuracy",
    seed: int = 0,
    device: torch.device = torch.device("cpu"),
    stop: Optional[StopToken] = None,
    on_progress: OnProgress = lambda done, total: None,
    grid: Sequence[float] = GRID,
    folds: Optional[int] = None,
) -> LinearHead:
    """Fit the head on ``views`` (each (pictures, features); view 0 the evaluation crop) of the training pictures."""
    stop = stop or StopToken()
    started = time.perf_counter()
    labels = np.asarray(labels, dtype=np.int64)
    fold_of = grouped_folds(labels, digests, seed, folds or (FOLDS if len(labels) < LARGE else 3))
    data = _data(views, labels, fold_of, num_classes, device)
    weightings = weightings_to_try(class_weights, labels, num_classes)
    fitted = _fitted(weightings)
    k = int(fold_of.max()) + 1
    total = len(fitted) * len(grid) * k + 1
    folds_ = [_make_fold(data, f, fitted) for f in range(k)]
    candidates: list[Candidate] = []
    for i, weighting in enumerate(fitted):
        base = i * len(grid) * k
        candidates += _path(data, weighting, weightings, folds_, grid, metric, stop, lambda j: on_progress(base + j, total))
    best = max(candidates, key=lambda c: c.score(metric))
    W, b, converged = _refit(data, best, folds_, stop)
    on_progress(total, total)
    weight, bias = _fold_prior_in(W, b, best, data)
    return LinearHead(
        weight, bias, best.weighting, best.l2, metric, candidates, _oof_probs(data, best, folds_),
        train_accuracy=float(((np.asarray(views[0], dtype=np.float32) @ weight.T + bias).argmax(1) == data.labels).mean()),
        rows=int(data.x.shape[0]), views=len(views), folds=k, converged=converged,
        seconds=time.perf_counter() - started,
    )


def _data(views: Sequence[np.ndarray], labels: np.ndarray, fold_of: np.ndarray, num_classes: int, device: torch.device) -> _Data:
    n, d = views[0].shape
    row_picture = np.tile(np.arange(n), len(views))
    row_view = np.repeat(np.arange(len(views)), n)
    order = np.lexsort((row_picture, row_view, fold_of[row_picture]))  # by fold, then view, then picture
    row_picture, row_view = row_picture[order], row_view[order]
    x = torch.empty((len(order), d), dtype=torch.float32, device=device)
    for v, array in enumerate(views):
        at = np.flatnonzero(row_view == v)
        x[torch.from_numpy(at).to(device)] = torch.from_numpy(np.asarray(array, dtype=np.float32)[row_picture[at]]).to(device)
    bounds = np.searchsorted(fold_of[row_picture], np.arange(int(fold_of.max()) + 2))
    row_labels = labels[row_picture]
    return _Data(x, torch.from_numpy(row_labels).to(device), row_labels, row_picture, row_view, bounds, labels, num_classes)


def _make_fold(data: _Data, f: int, fitted: Sequence[str]) -> _Fold:
    lo, hi = int(data.bounds[f]), int(data.bounds[f + 1])
    held_rows = lo + np.flatnonzero(data.row_view[lo:hi] == 0)  # the held-out pictures' evaluation crops
    held_pictures = data.row_picture[held_rows]
    problems = {w: _problem(data.x, data.row_labels, data.outside(f), w, data.num_classes) for w in fitted}
    d, c = data.x.shape[1], data.num_classes
    zero = (torch.zeros(c, d, device=data.x.device), torch.zeros(c, device=data.x.device))
    in_fold = np.ones(data.pictures, dtype=bool)
    in_fold[held_pictures] = False
    prior = torch.from_numpy(log_prior(data.labels[in_fold], c)).float().to(data.x.device)
    return _Fold(problems, torch.from_numpy(held_rows).to(data.x.device), held_pictures, prior, {w: zero for w in fitted})


def _held_log_probs(data: _Data, fold: _Fold, fitted: str, W, b, prior_corrected: bool) -> torch.Tensor:
    logits = fold.problems[fitted].logits(data.x.index_select(0, fold.held), W, b)
    return torch.log_softmax(logits - fold.prior if prior_corrected else logits, 1).cpu()


def _path(data: _Data, weighting: str, weightings, folds_, grid, metric, stop, progress) -> list[Candidate]:
    """Fit every fold at each strength, strongest first, warm-starting each fit from the last; score out of fold."""
    scored = [w for w in weightings if w == weighting or (w == "prior" and weighting == "none")]
    out: list[Candidate] = []
    best, since_best, fits = None, 0, 0
    for l2 in grid:
        oof = {w: torch.zeros(data.pictures, data.num_classes) for w in scored}
        for fold in folds_:
            W, b, _ = solve(data.x, data.y, fold.problems[weighting], l2, fold.warm[weighting], stop, CV_TOL)
            fold.warm[weighting] = fold.at[(weighting, l2)] = (W, b)
            for w in scored:
                oof[w][torch.from_numpy(fold.held_pictures)] = _held_log_probs(data, fold, weighting, W, b, w == "prior")
            fits += 1
            progress(fits)
        step = [_candidate(w, l2, oof[w], data.labels) for w in scored]
        out += step
        top = max(c.score(metric) for c in step)
        best, since_best = (top, 0) if best is None or top > best else (best, since_best + 1)
        if since_best >= PATIENCE:
            break
    return out


def _candidate(weighting: str, l2: float, log_probs: torch.Tensor, labels: np.ndarray) -> Candidate:
    acc, bal = accuracy_scores(labels, log_probs.argmax(1).numpy())
    log_loss = float(-log_probs[torch.arange(len(labels)), torch.from_numpy(labels)].mean())
    return Candidate(weighting, l2, acc, bal, log_loss)


def _refit(data: _Data, best: Candidate, folds_, stop) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """The chosen setting on every training row, started from the folds' mean solution; returned on raw features."""
    fitted = "none" if best.weighting == "prior" else best.weighting
    problem = _problem(data.x, data.row_labels, [(0, len(data.row_labels))], fitted, data.num_classes)
    starts = [fold.at[(fitted, best.l2)] for fold in folds_]
    start = (torch.stack([s[0] for s in starts]).mean(0), torch.stack([s[1] for s in starts]).mean(0))
    W, b, converged = solve(data.x, data.y, problem, best.l2, start, stop)
    return (*problem.raw(W, b), converged)


def _fold_prior_in(W: torch.Tensor, b: torch.Tensor, best: Candidate, data: _Data) -> tuple[np.ndarray, np.ndarray]:
    bias = b.cpu().double().numpy()
    if best.weighting == "prior":
        bias = bias - log_prior(data.labels, data.num_classes)
    return W.cpu().numpy().astype(np.float32), bias.astype(np.float32)


def _oof_probs(data: _Data, best: Candidate, folds_) -> np.ndarray:
    fitted = "none" if best.weighting == "prior" else best.weighting
    probs = np.zeros((data.pictures, data.num_classes), dtype=np.float32)
    for fold in folds_:
        W, b = fold.at[(fitted, best.l2)]
        probs[fold.held_pictures] = _held_log_probs(data, fold, fitted, W, b, best.weighting == "prior").exp().numpy()
    return probs
