"""CORAL (Sun, Feng and Saenko 2016, "Return of frustratingly easy domain adaptation"): feature alignment.

The source features are whitened with their own covariance and re-coloured with the new domain's,
and moved to its mean: ``aligned = (x - mean_s) @ M + mean_t`` with ``M = Cs^-1/2 Ct^1/2``. As in the
paper, the covariances are taken on standardised features (each dimension divided by its standard
deviation on the source) with the identity added (``shrinkage`` 1): a few hundred pictures never
estimate a full covariance of a thousand dimensions. With ``shrinkage`` 0 and enough pictures, the
aligned source features have exactly the new domain's covariance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHRINKAGE = 1.0  # the paper's: the identity added to each covariance of standardised features


@dataclass(frozen=True)
class CoralMap:
    source_mean: np.ndarray  # (d,)
    target_mean: np.ndarray  # (d,)
    matrix: np.ndarray  # (d, d), on raw features
    shrinkage: float

    def apply(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        return ((x - self.source_mean) @ self.matrix + self.target_mean).astype(np.float32)


def covariance(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(0)
    return centred.T @ centred / max(1, len(x) - 1)


def _power(c: np.ndarray, p: float) -> np.ndarray:
    """``c ** p`` of a symmetric positive semi-definite matrix (eigenvalues floored: never a division by zero)."""
    w, v = np.linalg.eigh((c + c.T) / 2)
    w = np.maximum(w, max(float(w.max()), 1e-12) * 1e-12)
    return (v * w**p) @ v.T


def fit_coral(source: np.ndarray, target: np.ndarray, shrinkage: float = SHRINKAGE) -> CoralMap:
    """The map that gives source features the new domain's mean and (shrunk) covariance."""
    s, t = np.asarray(source, dtype=np.float64), np.asarray(target, dtype=np.float64)
    scale = s.std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    eye = np.eye(s.shape[1]) * shrinkage
    a = _power(covariance(s / scale) + eye, -0.5) @ _power(covariance(t / scale) + eye, 0.5)
    matrix = (a / scale[:, None]) * scale[None, :]  # diag(1/scale) A diag(scale): A acting on raw features
    return CoralMap(s.mean(0), t.mean(0), matrix, shrinkage)
