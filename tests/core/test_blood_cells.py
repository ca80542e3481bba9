"""Frozen mode on imbalanced microscope pictures: the default run against an independent reference on the same features.

Reads ../shared/datasets/pbc_blood_cells (skipped when absent) with its rarest class cut to 1/30 of
the largest (``tests.accuracy_sets``). The reference is scikit-learn's logistic regression with
balanced class weights, cross-validated on the same training rows' centre-crop features.
Slow: about three minutes on 2 CPU cores.
"""

import numpy as np
import pytest

from tests.core.test_calibration import check_calibration_improves
from tests.accuracy_sets import PBC, pbc_available, rare_subsample, reference_probe, seeded_split
from tlstudio.core.config import TrainConfig
from tlstudio.core.data.scan import scan_folder
from tlstudio.core.engine.trainer import Trainer

pytestmark = pytest.mark.slow


def test_the_default_frozen_run_is_within_a_point_of_the_balanced_reference_at_30_to_1(tmp_path):
    pytest.importorskip("sklearn")
    if not pbc_available():
        pytest.skip("../shared/datasets/pbc_blood_cells is not present")
    index = seeded_split(rare_subsample(scan_folder(PBC)), seed=0)
    counts = np.bincount([s.label for s in index.samples])
    assert counts.max() / counts.min() == 30

    trainer = Trainer(TrainConfig(data_dir=str(PBC), device="cpu", export=False), tmp_path / "run", cache_dir=tmp_path / "cache", index=index)
    result = trainer.run()
    labels = np.array([s.label for s in index.samples])
    train = [i for i, s in enumerate(index.samples) if s.split == "train"]
    val = [i for i, s in enumerate(index.samples) if s.split == "val"]
    reference = reference_probe(trainer.features.train[0], labels[train], trainer.features.val, labels[val], "balanced", seed=0)
    ours = result.metrics["balanced_accuracy"]
    print(f"30:1 blood cells: tlstudio balanced accuracy {ours:.4f} (accuracy {result.metrics['accuracy']:.4f}); "
          f"balanced reference {reference.balanced_accuracy:.4f} (accuracy {reference.accuracy:.4f}, C={reference.C:g})")
    assert ours >= reference.balanced_accuracy - 0.01
    check_calibration_improves(result.summary, "30:1 blood cells")
