"""Calibrated answers: one temperature for the logits, how honest the probabilities are, and "not sure".

Temperature scaling divides the logits by one scalar ``T > 0`` before the softmax: the answer (the
arg-max) never changes, only how sure the probabilities say the model is. ``T`` is fitted where the
run's other choices are made, never on the validation pictures that report on them:

- a fine-tune: the selection split's logits of the kept epoch;
- a frozen solved head: the out-of-fold logits of the training pictures (every picture predicted by a
  cross-validation fold head that did not see it; ``LinearHead.oof_probs``, whose logs are its logits up
  to a per-picture constant, which the softmax ignores).

The negative log-likelihood is convex in ``log T``: a golden-section search on it converges to the one
minimum. The validation figures (NLL, the 15-bin expected calibration error, the reliability bins) are
measured afterwards with ``T`` applied, next to the same figures before it.

"Not sure": a threshold on the top calibrated probability (0: always answer). The coverage curve, on
the same pictures ``T`` was fitted on, says for each threshold the share of pictures answered and their
accuracy, so the user can choose one before it is carried into the exported files.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import numpy as np

ECE_BINS = 15
LOG_T_RANGE = (math.log(0.05), math.log(20.0))  # far wider than any network's over- or under-confidence
SEARCH_TOL = 1e-7  # on log T
CURVE_STEP = 0.01  # thresholds of the coverage curve: 0.00, 0.01, ..., 1.00
NO_FIT = "none"  # no pictures to fit on (a run without a selection split): T = 1
NOT_SURE = "not sure"  # the answer below the threshold, as every view and the CSV write it


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def scaled_probs(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T)."""
    return np.exp(log_softmax(np.asarray(logits, dtype=np.float64) / temperature))


def logits_of(probs: np.ndarray) -> np.ndarray:
    """Logits that give ``probs`` back (their logs; a probability that underflowed to 0 counts as e^-80)."""
    return np.log(np.maximum(np.asarray(probs, dtype=np.float64), math.exp(-80)))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true classes under softmax(logits / T)."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return 0.0
    lp = log_softmax(np.asarray(logits, dtype=np.float64) / temperature)
    return float(-lp[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The ``T`` that minimises the NLL of ``softmax(logits / T)``; 1.0 when there is nothing to fit on."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return 1.0
    lo, hi = LOG_T_RANGE
    ratio = (math.sqrt(5) - 1) / 2
    a, b = lo + (1 - ratio) * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(logits, labels, math.exp(a)), nll(logits, labels, math.exp(b))
    while hi - lo > SEARCH_TOL:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = lo + (1 - ratio) * (hi - lo)
            fa = nll(logits, labels, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(logits, labels, math.exp(b))
    return float(math.exp((lo + hi) / 2))


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    confidence: float  # mean top probability of its pictures (0 when empty)
    accuracy: float  # share of them answered right (0 when empty)


def _bin_of(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Bins (k/B, (k+1)/B]: a confidence of exactly 1 is in the last one, and 0 in the first."""
    return np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[ReliabilityBin]:
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    confidence, right = probs.max(axis=1), probs.argmax(axis=1) == labels
    which = _bin_of(confidence, bins)
    out = []
    for k in range(bins):
        inside = which == k
        n = int(inside.sum())
        out.append(ReliabilityBin(k / bins, (k + 1) / bins, n, float(confidence[inside].mean()) if n else 0.0, float(right[inside].mean()) if n else 0.0))
    return out


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: the count-weighted mean gap between confidence and accuracy over the bins."""
    total = len(labels)
    if total == 0:
        return 0.0
    return float(sum(b.count * abs(b.accuracy - b.confidence) for b in reliability_bins(probs, labels, bins)) / total)


@dataclass(frozen=True)
class CoveragePoint:
    threshold: float  # answer when the top probability is >= this
    answered: float  # share of pictures answered
    accuracy: float  # accuracy of those answered (1.0 when none is)


def coverage_at(probs: np.ndarray, labels: np.ndarray, threshold: float) -> CoveragePoint:
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return CoveragePoint(float(threshold), 0.0, 1.0)
    answered = probs.max(axis=1) >= threshold
    right = probs.argmax(axis=1) == labels
    return CoveragePoint(float(threshold), float(answered.mean()), float(right[answered].mean()) if answered.any() else 1.0)


def coverage_curve(probs: np.ndarray, labels: np.ndarray) -> list[CoveragePoint]:
    steps = int(round(1 / CURVE_STEP))
    return [coverage_at(probs, labels, round(i * CURVE_STEP, 4)) for i in range(steps + 1)]


def point_on(curve: Sequence[CoveragePoint], threshold: float) -> CoveragePoint:
    """The curve's point at the largest threshold not above ``threshold`` (the curve starts at 0)."""
    below = [p for p in curve if p.threshold <= threshold + 1e-9]
    return below[-1] if below else curve[0]


def sentence(point: CoveragePoint) -> str:
    """The plain-words reading of one point of the curve."""
    if point.threshold <= 0:
        return f"Always answer: {point.accuracy:.0%} of the answers are right."
    if point.answered == 0:
        return "Say 'not sure' for every picture: no picture is that sure."
    return f"Answer {point.answered:.0%} of pictures at {point.accuracy:.0%} accuracy; say 'not sure' for the rest."


def check_threshold(value: float) -> float:
    from tlstudio.core.errors import UserError

    if not (0.0 <= float(value) < 1.0) or math.isnan(float(value)):
        raise UserError(f"the 'not sure' threshold {value} must be at least 0 (always answer) and below 1, e.g. 0.9.")
    return float(value)


@dataclass
class Calibration:
    """summary.json's ``calibration``: the temperature, where it was fitted, and what it did on the validation pictures."""

    temperature: float
    fitted_on: str  # "selection split", "cross-validation (out-of-fold)", or NO_FIT
    pictures: int  # pictures T was fitted on (and the coverage curve computed on)
    fit_nll_before: float
    fit_nll_after: float
    val_nll_before: float
    val_nll_after: float
    val_ece_before: float
    val_ece_after: float
    bins: int
    reliability_before: list[ReliabilityBin] = field(default_factory=list)  # validation pictures
    reliability_after: list[ReliabilityBin] = field(default_factory=list)
    coverage: list[CoveragePoint] = field(default_factory=list)  # fit pictures, calibrated
    threshold: float = 0.0  # "not sure" below this top probability; 0: always answer

    @property
    def chosen(self) -> CoveragePoint:
        return point_on(self.coverage, self.threshold) if self.coverage else CoveragePoint(self.threshold, 0.0, 1.0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        d = dict(d)
        d["reliability_before"] = [ReliabilityBin(**b) for b in d.get("reliability_before", [])]
        d["reliability_after"] = [ReliabilityBin(**b) for b in d.get("reliability_after", [])]
        d["coverage"] = [CoveragePoint(**p) for p in d.get("coverage", [])]
        return cls(**d)


def read_calibration(summary: Optional[dict]) -> Optional[Calibration]:
    """The run's calibration, or None for a run from before it (its probabilities are the network's own)."""
    found = (summary or {}).get("calibration")
    return Calibration.from_dict(found) if isinstance(found, dict) else None


def calibrate(fit_logits: np.ndarray, fit_labels: np.ndarray, fitted_on: str, val_logits: np.ndarray, val_labels: np.ndarray,
              threshold: float = 0.0) -> Calibration:
    """Fit ``T`` on the fit pictures only, then report what it does on the validation pictures."""
    fit_labels, val_labels = np.asarray(fit_labels, dtype=np.int64), np.asarray(val_labels, dtype=np.int64)
    t = fit_temperature(fit_logits, fit_labels)
    before, after = scaled_probs(val_logits, 1.0), scaled_probs(val_logits, t)
    return Calibration(
        temperature=t, fitted_on=fitted_on if len(fit_labels) else NO_FIT, pictures=int(len(fit_labels)),
        fit_nll_before=nll(fit_logits, fit_labels), fit_nll_after=nll(fit_logits, fit_labels, t),
        val_nll_before=nll(val_logits, val_labels), val_nll_after=nll(val_logits, val_labels, t),
        val_ece_before=ece(before, val_labels), val_ece_after=ece(after, val_labels), bins=ECE_BINS,
        reliability_before=reliability_bins(before, val_labels), reliability_after=reliability_bins(after, val_labels),
        coverage=coverage_curve(scaled_probs(fit_logits, t), fit_labels) if len(fit_labels) else [], threshold=threshold,
    )
