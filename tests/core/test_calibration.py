"""Calibrated answers: the temperature fitted where choices are made, ECE, and "not sure" carried in the exports."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.synthetic import make_colour_dataset
from tlstudio.core.config import TrainConfig
from tlstudio.core.data.images import load_rgb_array
from tlstudio.core.data.pixel_store import centre_square
from tlstudio.core.engine import calibration as cal
from tlstudio.core.engine.trainer import Trainer
from tlstudio.core.inference.export import read_export_info, verify_in_fresh_process
from tlstudio.core.inference.formats import apply_threshold
from tlstudio.core.inference.predict import ExportedModel, predictions_csv


def sampled(n: int, classes: int, true_t: float, seed: int = 0):
    """Labels drawn from softmax(z), and the logits a model over-confident by ``true_t`` reports (z * true_t)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2.0, size=(n, classes))
    p = cal.scaled_probs(z, 1.0)
    labels = np.array([rng.choice(classes, p=row) for row in p])
    return z * true_t, labels


def test_the_fit_recovers_a_known_temperature_and_lowers_the_nll():
    logits, labels = sampled(20000, 5, 2.5)
    t = cal.fit_temperature(logits, labels)
    assert t == pytest.approx(2.5, rel=0.04)
    assert cal.nll(logits, labels, t) <= cal.nll(logits, labels, 1.0)
    under, labels2 = sampled(20000, 3, 0.5, seed=1)
    assert cal.fit_temperature(under, labels2) == pytest.approx(0.5, rel=0.04)


def test_the_fit_is_the_minimum_of_the_nll():
    logits, labels = sampled(3000, 4, 1.7, seed=2)
    t = cal.fit_temperature(logits, labels)
    best = cal.nll(logits, labels, t)
    assert all(cal.nll(logits, labels, t * f) >= best for f in (0.9, 0.99, 1.01, 1.1))


def test_ece_of_a_hand_made_case():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 1, 0, 0])
    # bin (0.867, 0.933]: 2 pictures, confidence 0.9, accuracy 0.5 -> 0.4; bin (0.533, 0.6]: confidence 0.6, accuracy 0.5 -> 0.1
    assert cal.ece(probs, labels) == pytest.approx((2 * 0.4 + 2 * 0.1) / 4)
    bins = cal.reliability_bins(probs, labels)
    assert len(bins) == cal.ECE_BINS and sum(b.count for b in bins) == 4
    assert cal.ece(np.array([[1.0, 0.0]]), np.array([0])) == 0.0


def test_coverage_counts_the_pictures_at_or_above_the_threshold():
    probs = np.array([[0.95, 0.05], [0.8, 0.2], [0.3, 0.7], [0.55, 0.45]])
    labels = np.array([0, 1, 1, 1])
    point = cal.coverage_at(probs, labels, 0.7)
    assert point.answered == pytest.approx(0.75) and point.accuracy == pytest.approx(2 / 3)
    curve = cal.coverage_curve(probs, labels)
    assert curve[0].answered == 1.0 and cal.point_on(curve, 0.705).threshold == pytest.approx(0.7)


def test_the_fit_never_sees_the_validation_labels():
    fit_logits, fit_labels = sampled(500, 3, 2.0, seed=3)
    val_logits, val_labels = sampled(200, 3, 2.0, seed=4)
    a = cal.calibrate(fit_logits, fit_labels, "selection split", val_logits, val_labels)
    b = cal.calibrate(fit_logits, fit_labels, "selection split", val_logits, np.roll(val_labels, 1))
    assert a.temperature == b.temperature and a.coverage == b.coverage
    assert a.val_nll_before != b.val_nll_before
    assert cal.Calibration.from_dict(json.loads(json.dumps(a.to_dict()))) == a


def noisy_colours(root: Path) -> Path:
    """Two folders of red and green pictures, 70% of each folder's own colour: no answer is sure, so thresholds bite."""
    data = make_colour_dataset(root, classes=("red", "green"), per_class=30, seed=5)
    for own, other in (("red", "green"), ("green", "red")):
        for picture in sorted((data / own).glob(f"{own}_*"))[:9]:
            picture.rename(data / other / f"moved_{picture.name}")
    return data


@pytest.fixture(scope="module")
def frozen_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("calibration")
    data = noisy_colours(root / "colours")
    cfg = TrainConfig(data_dir=str(data), backbone="efficientnet_lite0", freeze_depth="all", epochs=1, batch_size=8, image_size=64)
    Trainer(cfg, root / "run", cache_dir=root / "cache", pretrained=False).run()
    return root / "run"


def val_squares(run: Path, resize: int) -> tuple[list[Path], list[np.ndarray], np.ndarray]:
    data = Path(json.loads((run / "config.json").read_text())["data_dir"])
    val = [p for p in json.loads((run / "predictions.json").read_text()) if p["split"] == "val"]
    paths = [data / p["path"] for p in val]
    squares = [centre_square(load_rgb_array(p, short_side=resize), resize) for p in paths]
    return paths, squares, np.array([p["probs"] for p in val])


def test_a_frozen_run_is_calibrated_on_its_out_of_fold_pictures_and_exports_the_temperature(frozen_run):
    summary = json.loads((frozen_run / "summary.json").read_text())
    found = cal.read_calibration(summary)
    train_pictures = sum(1 for s in json.loads((frozen_run / "dataset.json").read_text())["samples"] if s["split"] == "train")
    assert found.fitted_on.startswith("cross-validation") and found.pictures == train_pictures
    assert found.threshold == 0.0 and found.fit_nll_after <= found.fit_nll_before + 1e-12
    info = read_export_info(frozen_run / "model.pt")
    assert info["temperature"] == pytest.approx(found.temperature) and info["not_sure_below"] == 0.0
    assert summary["export"]["verified"]


def test_the_threshold_in_the_export_changes_predict_exactly_as_the_probabilities_say(frozen_run):
    model = ExportedModel.load(frozen_run / "model.pt")
    paths, squares, probs = val_squares(frozen_run, model.resize_size)
    tops = np.unique(probs.max(1))
    middle = len(tops) // 2
    threshold = float((tops[middle - 1] + tops[middle]) / 2)  # halfway between two pictures: no rounding decides a side
    written = apply_threshold(frozen_run, threshold)
    assert [p.name for p in written] == ["model.pt"]
    assert read_export_info(frozen_run / "model.pt")["not_sure_below"] == threshold
    assert cal.read_calibration(json.loads((frozen_run / "summary.json").read_text())).threshold == threshold

    model = ExportedModel.load(frozen_run / "model.pt")  # still trusted: tlstudio wrote it
    predictions = model.predict_paths(paths)
    expected = probs.max(1) >= threshold
    answered = np.array([not p.not_sure for p in predictions])
    assert 0 < answered.sum() < len(answered)
    assert answered.mean() == pytest.approx(expected.mean())
    assert [p.answer(model.class_names) is None for p in predictions] == list(~answered)
    assert predictions_csv(predictions, model.class_names).count(",not sure,") == int((~answered).sum())
    check = verify_in_fresh_process(frozen_run / "model.pt", squares, probs)
    assert check.ok and check.max_abs_diff < 1e-4


def test_a_fine_tune_is_calibrated_on_its_selection_split_only(tmp_path):
    data = noisy_colours(tmp_path / "colours")
    cfg = TrainConfig(data_dir=str(data), backbone="efficientnet_lite0", freeze_depth="6", epochs=1, batch_size=8, image_size=64, export=False)
    result = Trainer(cfg, tmp_path / "run", cache_dir=tmp_path / "cache", pretrained=False).run()
    found = cal.read_calibration(result.summary)
    assert found.fitted_on == "selection split" and found.pictures == result.summary["selection"]["pictures"] > 0
    val = [p for p in json.loads((tmp_path / "run" / "predictions.json").read_text()) if p["split"] == "val"]
    labels = np.array([p["label"] for p in val])
    # predictions.json holds the calibrated probabilities: their NLL is the reported one after scaling
    assert cal.nll(cal.logits_of(np.array([p["probs"] for p in val])), labels) == pytest.approx(found.val_nll_after, abs=1e-4)


def test_a_threshold_outside_0_to_1_is_refused(frozen_run):
    from tlstudio.core.errors import UserError

    with pytest.raises(UserError):
        apply_threshold(frozen_run, 1.5)
    assert not math.isnan(read_export_info(frozen_run / "model.pt")["not_sure_below"])


def check_calibration_improves(summary: dict, where: str) -> None:
    """The validation log-loss and 15-bin ECE after scaling are both below their values before (issue 15, item 4)."""
    found = cal.read_calibration(summary)
    print(f"{where}: T={found.temperature:.3f} on {found.pictures} out-of-fold pictures; validation NLL {found.val_nll_before:.4f} -> "
          f"{found.val_nll_after:.4f}, ECE(15) {found.val_ece_before:.4f} -> {found.val_ece_after:.4f}")
    assert found.fitted_on.startswith("cross-validation")
    assert found.val_nll_after < found.val_nll_before
    assert found.val_ece_after < found.val_ece_before


def test_the_threshold_command_writes_the_files_and_predict_prints_not_sure(frozen_run, capsys):
    from tlstudio.cli import main

    assert main(["threshold", str(frozen_run), "0.99"]) == 0
    assert read_export_info(frozen_run / "model.pt")["not_sure_below"] == 0.99
    paths, _, probs = val_squares(frozen_run, ExportedModel.load(frozen_run / "model.pt").resize_size)
    capsys.readouterr()
    assert main(["predict", str(frozen_run / "model.pt"), *map(str, paths)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert sum(cal.NOT_SURE in line for line in printed) == int((probs.max(1) < 0.99).sum()) > 0
