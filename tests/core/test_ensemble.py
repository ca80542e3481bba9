"""Combine runs: the ensemble's figures are the mean of its members' saved probabilities, and its file reproduces them."""

import json
import shutil

import numpy as np
import pytest

from tests.synthetic import make_colour_dataset
from tlstudio.core.config import TrainConfig
from tlstudio.core.engine.trainer import Trainer
from tlstudio.core.errors import UserError
from tlstudio.core.inference.ensemble import combine_runs
from tlstudio.core.inference.export import read_export_info
from tlstudio.core.inference.model_file import open_model_file
from tlstudio.core.report.metrics import accuracy_scores
from tlstudio.core.runs.files import RunFiles, RunStatus, STOPPED


def quick_run(data, root, name, backbone, image_size, seed=0):
    cfg = TrainConfig(data_dir=str(data), backbone=backbone, freeze_depth="all", batch_size=8, image_size=image_size, seed=seed, export=False, device="cpu")
    Trainer(cfg, root / name, cache_dir=root / "cache").run()
    return root / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two frozen runs of different backbones and input sizes on one generated set, and their ensemble."""
    root = tmp_path_factory.mktemp("ensemble")
    data = make_colour_dataset(root / "colours", per_class=10, size=72)
    a = quick_run(data, root, "lite0", "efficientnet_lite0", 64)
    b = quick_run(data, root, "lite1", "efficientnet_lite1", 80)
    result = combine_runs([a, b], root / "ensemble")
    return root, data, (a, b), result


def val_probs(run):
    rows = [p for p in json.loads((run / "predictions.json").read_text()) if p["split"] == "val"]
    return {p["path"]: (p["label"], np.asarray(p["probs"])) for p in rows}


def test_the_ensembles_accuracy_is_that_of_the_mean_of_its_members_probabilities(runs):
    _, _, (a, b), result = runs
    pa, pb = val_probs(a), val_probs(b)
    paths = sorted(pa)
    labels = np.array([pa[p][0] for p in paths])
    mean = np.stack([(pa[p][1] + pb[p][1]) / 2 for p in paths])
    assert (result.val_accuracy, result.val_balanced_accuracy) == accuracy_scores(labels, mean.argmax(1))
    assert result.val_pictures == len(paths)
    assert [m.backbone for m in result.members] == ["efficientnet_lite0", "efficientnet_lite1"]
    own = [accuracy_scores(labels, np.stack([p[q][1] for q in paths]).argmax(1))[0] for p in (pa, pb)]
    assert [m.val_accuracy for m in result.members] == own
    assert result.best_member.val_accuracy == max(own)


def test_the_file_reproduces_the_averaged_probabilities_in_a_fresh_process(runs):
    _, _, _, result = runs
    check = result.verification
    assert check.ok and check.n > 0 and check.agreement == 1.0
    assert check.max_abs_diff < 1e-4  # the members' own pixels: the same numbers as their runs' evaluation
    assert check.file_agreement >= 0.95
    assert result.model_path.is_file() and not (result.model_path.parent / "model.unverified.pt").exists()
    saved = json.loads(result.result_path.read_text())
    assert saved["val_accuracy"] == result.val_accuracy and saved["verification"]["ok"]


def test_the_file_carries_its_members_origin_and_no_threshold(runs):
    _, data, (a, b), result = runs
    info = read_export_info(result.model_path)
    assert info["kind"] == "ensemble" and info["not_sure_below"] == 0.0
    assert [m["run_id"] for m in info["members"]] == ["lite0", "lite1"]
    assert [m["preprocessing"]["input_size"] for m in info["members"]] == [64, 80]
    assert info["summary"]["data_dir"] == str(data) and info["class_names"] == list(result.classes)


def test_predict_runs_the_ensemble_file_like_any_model_file(runs):
    """The file is trusted (tlstudio wrote it) and its answers on the original pictures mostly match the averaged ones."""
    _, data, (a, _), result = runs
    model = open_model_file(result.model_path)
    assert model.class_names == list(result.classes) and model.resize_size == max(m["preprocessing"]["resize_size"] for m in model.info["members"])
    pa = val_probs(a)
    predictions = model.predict_paths([data / p for p in sorted(pa)])
    assert all(p.ok and not p.not_sure for p in predictions)
    assert np.allclose([sum(p.probs) for p in predictions], 1.0, atol=1e-5)
    pb = val_probs(runs[2][1])
    averaged = [result.classes[int(np.argmax(pa[q][1] + pb[q][1]))] for q in sorted(pa)]
    assert [p.answer(model.class_names) for p in predictions] == averaged


def test_runs_of_other_classes_are_refused_naming_the_run(runs, tmp_path):
    _, _, (a, b), _ = runs
    other = tmp_path / "other"
    shutil.copytree(b, other)
    summary = json.loads((other / "summary.json").read_text())
    summary["classes"] = list(reversed(summary["classes"]))  # the same names in another order are other classes
    (other / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(UserError, match="other.*classes"):
        combine_runs([a, other], tmp_path / "ensemble")
    assert not (tmp_path / "ensemble" / "model.pt").exists()


def test_runs_validated_on_other_pictures_are_refused(runs, tmp_path):
    _, _, (a, b), _ = runs
    changed = tmp_path / "changed"
    shutil.copytree(b, changed)
    dataset = json.loads((changed / "dataset.json").read_text())
    val = next(s for s in dataset["samples"] if s["split"] == "val")
    val["digest"] = "0" * len(val["digest"])  # same names, one picture's content differs
    (changed / "dataset.json").write_text(json.dumps(dataset))
    with pytest.raises(UserError, match="other pictures"):
        combine_runs([a, changed], tmp_path / "ensemble")


def test_a_stop_cancels_before_any_file_is_written(runs, tmp_path):
    from tlstudio.core.events import Cancelled, StopToken

    _, _, (a, b), _ = runs
    stop = StopToken()
    stop.stop()
    with pytest.raises(Cancelled):
        combine_runs([a, b], tmp_path / "stopped", stop=stop)
    assert not any((tmp_path / "stopped").glob("model*.pt"))


def test_an_unfinished_run_one_run_or_the_same_run_twice_are_refused(runs, tmp_path):
    _, _, (a, b), _ = runs
    stopped = tmp_path / "stopped"
    shutil.copytree(b, stopped)
    RunFiles(stopped).write_status(RunStatus(STOPPED, 0, 20))
    with pytest.raises(UserError, match="not finished"):
        combine_runs([a, stopped], tmp_path / "e1")
    with pytest.raises(UserError, match="at least two"):
        combine_runs([a], tmp_path / "e2")
    with pytest.raises(UserError, match="twice"):
        combine_runs([a, a], tmp_path / "e3")
    with pytest.raises(UserError, match="one of the runs"):
        combine_runs([a, b], b)


def test_the_cli_prints_the_member_and_ensemble_table_and_refuses_in_one_line(runs, tmp_path, capsys):
    from tlstudio.cli import main
    from tlstudio.commands.ensemble import table

    _, _, (a, _), result = runs
    lines = table(result).splitlines()
    assert [line.split()[0] for line in lines[1:4]] == ["lite0", "lite1", "ensemble"]
    assert sum("(best member)" in line for line in lines) == 1
    assert main(["ensemble", str(a), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "at least two" in err[0]


def test_the_check_spreads_over_the_validation_list():
    from tlstudio.core.inference.ensemble import spread

    held = spread(153, 50)
    assert len(held) == 50 and held[0] == 0 and held[-1] == 152
    assert spread(6, 50) == list(range(6)) and spread(6, 0) == [0]
