"""Domain adaptation: AdaBN's statistics, CORAL's alignment, a shifted target scored better, the adapted run's export, bad folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.synthetic import make_colour_dataset
from tlstudio.cli import main
from tlstudio.core.adapt import adabn, coral
from tlstudio.core.adapt.adapt_run import CORAL, adapt_run
from tlstudio.core.catalog.build import build_backbone
from tlstudio.core.config import TrainConfig
from tlstudio.core.engine.trainer import Trainer
from tlstudio.core.errors import UserError
from tlstudio.core.inference.predict import ExportedModel
from tlstudio.core.inference.trained_model import load_trained_model


def washed_out(source: Path, dest: Path) -> Path:
    """Low-contrast, bright copies (x * 0.35 + 140): the classes' colours stay in order, the features move far."""
    for path in sorted(source.rglob("*.jpg")):
        out = dest / path.parent.name / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) * 0.35 + 140
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, quality=95)
    return dest


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    """A frozen run on three colours, a washed-out target folder of other pictures, and the run adapted to it (CORAL)."""
    root = tmp_path_factory.mktemp("adapt")
    data = make_colour_dataset(root / "data", ("red", "green", "blue"), per_class=12)
    cache = root / "cache"
    config = TrainConfig(data_dir=str(data), freeze_depth="all", epochs=1, batch_size=8, image_size=64, augment="none", export=False)
    Trainer(config, root / "run", cache_dir=cache).run()
    target = washed_out(make_colour_dataset(root / "raw", ("red", "green", "blue"), per_class=10, seed=5), root / "target")
    (target / "red" / "broken.jpg").write_bytes(b"\xff\xd8 not a picture")
    result = adapt_run(root / "run", target, root / "adapted", method=CORAL, labelled_dir=target, cache_dir=cache)
    return dict(root=root, cache=cache, target=target, result=result)


def test_adabn_changes_only_batchnorm_buffers_and_they_are_the_batch_statistics():
    backbone = build_backbone("efficientnet_lite0", pretrained=False).eval()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    first_bn = adabn.batchnorm_layers(backbone)[0]
    seen = []
    handle = first_bn.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    x = torch.randn(8, 3, 64, 64)
    assert adabn.reestimate_batchnorm(backbone, [x]) == 8
    handle.remove()
    inputs = seen[0].transpose(0, 1).reshape(seen[0].shape[1], -1)
    assert torch.allclose(first_bn.running_mean, inputs.mean(1), atol=1e-5)
    assert torch.allclose(first_bn.running_var, inputs.var(1, unbiased=True), rtol=1e-4, atol=1e-5)
    bn_buffers = {f"{name}.{b}" for name, m in backbone.named_modules() if m in adabn.batchnorm_layers(backbone) for b in ("running_mean", "running_var", "num_batches_tracked")}
    after = backbone.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= bn_buffers
    assert not backbone.training and all(m.momentum == 0.1 for m in adabn.batchnorm_layers(backbone))


def test_pooled_batches_hold_equal_numbers_of_both_domains():
    s_rows, t_rows = adabn.pooled_order(50, 20, seed=0)
    assert len(s_rows) == len(t_rows) == 20 and len(set(s_rows)) == 20
    batches = list(adabn.pooled_batches(lambda i: torch.full((1,), float(i)), lambda i: torch.full((1,), -1.0 - i), s_rows, t_rows, lambda b: b, batch=8))
    assert sum(len(b) for b in batches) == 40
    assert all(int((b >= 0).sum()) == int((b < 0).sum()) for b in batches)


def test_coral_gives_the_source_the_targets_mean_and_covariance():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(600, 6)) @ rng.normal(size=(6, 6)) + 3
    target = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6)) - 1
    aligned = coral.fit_coral(source, target, shrinkage=0.0).apply(source)
    assert np.allclose(aligned.mean(0), target.mean(0), atol=1e-4)
    assert np.allclose(coral.covariance(aligned), coral.covariance(target), atol=1e-3)
    shrunk = coral.fit_coral(source, target).apply(source)  # the default shrinkage: nearer the target than the source was
    assert np.linalg.norm(coral.covariance(shrunk) - coral.covariance(target)) < np.linalg.norm(coral.covariance(source) - coral.covariance(target))


def test_adaptation_raises_accuracy_on_a_shifted_target_and_closes_the_gap(adapted):
    r = adapted["result"]
    assert r.pictures == 30 and r.skipped == 1  # the broken file skipped and counted
    assert r.after.labelled_accuracy >= r.before.labelled_accuracy + 0.2
    assert r.after.gap.classifier_accuracy < r.before.gap.classifier_accuracy
    assert r.after.source_val_accuracy >= r.before.source_val_accuracy - 0.1


def test_the_adapted_run_is_a_run_folder_and_its_export_agrees(adapted):
    r, target = adapted["result"], adapted["target"]
    summary = json.loads((r.run_dir / "summary.json").read_text())
    assert summary["adaptation"]["method"] == CORAL and summary["adaptation"]["pictures"] == 30
    assert summary["adaptation"]["after"]["labelled_accuracy"] == r.after.labelled_accuracy
    assert r.export["verified"] and summary["export"]["agreement"] >= 0.99  # checked in a fresh process
    trained = load_trained_model(r.run_dir)  # checkpoints/best.pt holds the adapted head
    source = load_trained_model(adapted["root"] / "run")
    assert not torch.equal(trained.model.head[-1].weight, source.model.head[-1].weight)
    exported = ExportedModel.load(r.run_dir / "model.pt")
    for path in sorted((target / "green").glob("*.jpg"))[:3]:
        assert np.allclose(exported.predict_file(path).probs, trained.probabilities(trained.eval_crop(path)), atol=1e-3)


def test_the_command_prints_the_adaptation(adapted, tmp_path, capsys):
    root = adapted["root"]
    rc = main(["adapt", str(root / "run"), str(adapted["target"]), "--out", str(tmp_path / "out"), "--method", "adabn", "--cache", str(adapted["cache"]),
               "--no-export", "--json"])
    assert rc == 0
    found = json.loads(capsys.readouterr().out)
    assert found["method"] == "adabn" and found["pictures"] == 30 and found["batchnorm"].startswith("pooled")
    assert (tmp_path / "out" / "checkpoints" / "best.pt").is_file() and not (tmp_path / "out" / "model.pt").exists()


@pytest.mark.parametrize("content", ["empty", "text only", "broken pictures"])
def test_a_folder_without_usable_pictures_is_refused_naming_it(adapted, tmp_path, content):
    folder = tmp_path / "new pictures"
    folder.mkdir()
    if content == "text only":
        (folder / "notes.txt").write_text("no pictures here")
    if content == "broken pictures":
        for i in range(3):
            (folder / f"{i}.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UserError) as err:
        adapt_run(adapted["root"] / "run", folder, tmp_path / "out", cache_dir=adapted["cache"])
    assert "new pictures" in str(err.value) and str(folder) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_the_adapted_model_is_exported_again_from_its_checkpoint(adapted):
    from tlstudio.core.adapt.export_kept import export_kept_model, is_adapted

    run_dir = adapted["result"].run_dir
    assert is_adapted(run_dir) and not is_adapted(adapted["root"] / "run")
    report = export_kept_model(run_dir, cache_dir=adapted["cache"])
    assert report["verified"] and report["agreement"] >= 0.99
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["export"] == report and summary["adaptation"]["method"] == CORAL


def test_domains_that_look_alike_keep_the_model_as_it_is(adapted, tmp_path):
    root = adapted["root"]
    # Every domain classifier accuracy is below 1.01: the gate says "alike" and nothing may change.
    r = adapt_run(root / "run", adapted["target"], tmp_path / "kept", method="adabn+coral", cache_dir=adapted["cache"], export=False, min_gap=1.01)
    assert not r.applied and r.after == r.before and r.batchnorm.startswith("unchanged")
    kept = load_trained_model(tmp_path / "kept").model.state_dict()
    source = load_trained_model(root / "run").model.state_dict()
    assert all(torch.equal(kept[k], source[k]) for k in source)


def test_tlstudio_export_keeps_the_adaptation_and_training_it_again_is_refused(adapted, capsys):
    run_dir = adapted["result"].run_dir
    best_before = (run_dir / "checkpoints" / "best.pt").read_bytes()
    assert main(["export", str(run_dir), "--cache", str(adapted["cache"]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verified"]
    assert (run_dir / "checkpoints" / "best.pt").read_bytes() == best_before  # not solved again from the source's features
    assert json.loads((run_dir / "summary.json").read_text())["adaptation"]["method"] == CORAL
    for argv in (["evaluate", str(run_dir)], ["train", "--resume", str(run_dir)]):
        assert main(argv) == 2
        assert "adapted" in capsys.readouterr().err
