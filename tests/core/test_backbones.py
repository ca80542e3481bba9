"""The catalog's promises: every entry builds, its stages cover the whole backbone, and freezing does what it says."""

from __future__ import annotations

import warnings
from functools import cache

import pytest
import torch
from torch import nn

from tlstudio.core.catalog import backbones as bb
from tlstudio.core.config import FreezeDepth

from tlstudio.core.catalog.build import build_backbone
from tlstudio.core.errors import UserError

REQUIRED = (
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "resnet18",
    "resnet50",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "convnext_tiny",
    "vit_b_16",
    "vgg16_bn",
    "inception_v3",
)


@cache
def random_backbone(name: str) -> bb.Backbone:
    """Built once per test session: the big ones (ViT, ConvNeXt) take seconds to initialise on a CPU."""
    torch.manual_seed(0)
    return build_backbone(name, pretrained=False).eval()


def probe_size(spec: bb.BackboneSpec) -> int:
    # Small inputs keep the CNN forwards cheap; ViT's positional embeddings fix its size, Inception needs 75 px.
    return spec.input_size if spec.fixed_input_size else max(64, spec.min_input_size)


def test_catalog_has_the_required_backbones_with_plausible_metadata():
    catalog = bb.catalog()
    assert set(REQUIRED) <= set(catalog)
    for spec in catalog.values():
        assert spec.source in ("bundled", "torchvision"), spec.name
        assert 1 < spec.params_m < 400 and 0 < spec.gflops < 100, spec.name
        assert 50 < spec.imagenet_top1 < 95, spec.name
        assert spec.input_size in (224, 240, 260, 299) and spec.resize_size >= spec.input_size, spec.name
        assert spec.min_input_size <= 75 and spec.cpu_images_per_s >= 0, spec.name
        assert all(0 < m < 1 for m in spec.mean) and all(0 < s < 1 for s in spec.std), spec.name
        assert spec.interpolation in ("bilinear", "bicubic"), spec.name
        assert len(spec.stages) >= 3 and len(set(spec.stage_labels)) == len(spec.stages), spec.name
        if spec.source == "torchvision":
            assert spec.weights_url.startswith("https://") and spec.weights_url.endswith(".pth"), spec.name
    lite0 = catalog["efficientnet_lite0"]
    assert lite0.source == "bundled" and lite0.mean == lite0.std == (0.5, 0.5, 0.5) and lite0.interpolation == "bicubic"
    assert catalog["resnet18"].feature_dim == 512 and catalog["vit_b_16"].fixed_input_size
    lites = [catalog[f"efficientnet_lite{i}"] for i in range(3)]
    assert all(s.source == "bundled" and s.mean == s.std == (0.5, 0.5, 0.5) for s in lites)
    assert [s.input_size for s in lites] == [224, 240, 260] and [s.resize_size for s in lites] == [256, 272, 292]
    # Bigger Lites cost more and score higher; each was measured on the development CPU.
    for key in ("params_m", "gflops", "imagenet_top1", "weights_file_size_mb"):
        assert [getattr(s, key) for s in lites] == sorted(getattr(s, key) for s in lites), key
    assert all(s.cpu_images_per_s > 0 for s in lites)
    vgg, inception = catalog["vgg16_bn"], catalog["inception_v3"]
    assert vgg.feature_dim == 4096 and vgg.classifier_path == "classifier.6" and len(vgg.stages) == 6
    assert (inception.input_size, inception.resize_size, inception.feature_dim) == (299, 342, 2048)
    assert dict(inception.builder_kwargs) == {"aux_logits": False, "init_weights": False, "transform_input": True}
    assert inception.ignored_key_prefixes == ("AuxLogits.",) and inception.min_input_size == 75


def test_inception_is_built_without_its_aux_head_and_with_its_input_transform():
    body = random_backbone("inception_v3").body
    assert body.AuxLogits is None and not body.aux_logits and body.transform_input
    assert not any(name.startswith("AuxLogits") for name, _ in body.named_parameters())


@pytest.mark.parametrize("name", ["vgg16_bn", "inception_v3"])
def test_the_chain_reproduces_the_forward_at_a_small_size(name):
    from tlstudio.core.catalog.frozen_prefix import run_chain

    backbone = random_backbone(name)
    size = probe_size(backbone.spec)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert torch.equal(run_chain(backbone, backbone.spec.chain, x), backbone(x))
        if name == "inception_v3":  # the chain must include the input transform: without it the output differs
            without = tuple(item for item in backbone.spec.chain if item != "_transform_input")
            assert not torch.allclose(run_chain(backbone, without, x), backbone(x))


def test_to_dict_is_plain_data_with_stage_labels():
    d = bb.get_backbone("resnet18").to_dict()
    assert d["stages"] == ["stem", "stage 1", "stage 2", "stage 3", "stage 4"]
    assert tuple(d["mean"]) == bb.IMAGENET_MEAN and d["input_size"] == 224


def test_unknown_backbone_names_the_choices():
    with pytest.raises(UserError, match="unknown backbone 'resnet1'.*resnet18"):
        bb.get_backbone("resnet1")


@pytest.mark.parametrize("name", REQUIRED)
def test_stages_resolve_and_cover_every_parameter_once(name):
    backbone = random_backbone(name)
    owner: dict[int, str] = {}
    for stage, items in zip(backbone.spec.stages, backbone.stage_modules()):
        for item in items:
            assert isinstance(item, (nn.Module, nn.Parameter)), f"{stage.label}: {item!r}"
            for p in bb._params_of(item):
                assert id(p) not in owner, f"a parameter is in both '{owner.get(id(p))}' and '{stage.label}'"
                owner[id(p)] = stage.label
    left_out = [n for n, p in backbone.named_parameters() if id(p) not in owner]
    assert left_out == []


@pytest.mark.parametrize("name", REQUIRED)
def test_forward_gives_features_and_traces(name):
    backbone = random_backbone(name)
    size = probe_size(backbone.spec)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice
        eager = backbone(x)
        traced = torch.jit.trace(backbone, x, check_trace=False)
        assert eager.shape == (1, backbone.spec.feature_dim)
        torch.testing.assert_close(traced(x), eager, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- freeze depth


def _stage_param_ids(backbone: bb.Backbone) -> list[set[int]]:
    return [{id(p) for item in items for p in bb._params_of(item)} for items in backbone.stage_modules()]


@pytest.fixture(params=["resnet18", "efficientnet_lite0"])
def fresh(request) -> bb.Backbone:
    torch.manual_seed(0)
    return build_backbone(request.param, pretrained=False)


def test_freezing_k_stages_freezes_exactly_those(fresh):
    head = nn.Linear(fresh.feature_dim, 3)
    plan = bb.apply_freeze(fresh, 2, head)
    frozen_ids = set().union(*_stage_param_ids(fresh)[:2])
    for name, p in fresh.named_parameters():
        assert p.requires_grad == (id(p) not in frozen_ids), name
    assert all(p.requires_grad for p in head.parameters())
    assert plan.frozen == fresh.spec.stage_labels[:2] and plan.trainable == fresh.spec.stage_labels[2:]
    every = list(fresh.parameters()) + list(head.parameters())
    assert plan.total_params == sum(p.numel() for p in every)
    assert plan.trainable_params == sum(p.numel() for p in every if id(p) not in frozen_ids)
    assert not plan.backbone_frozen


def test_freeze_all_leaves_only_the_head_trainable(fresh):
    head = nn.Linear(fresh.feature_dim, 3)
    plan = bb.apply_freeze(fresh, FreezeDepth.parse("all").stages_of(fresh.spec), head)
    assert not any(p.requires_grad for p in fresh.parameters())
    assert all(p.requires_grad for p in head.parameters())
    assert plan.backbone_frozen and plan.trainable_params == sum(p.numel() for p in head.parameters())
    bb.set_train_mode(fresh, plan)
    assert not any(m.training for m in fresh.modules())


def test_freeze_none_trains_everything(fresh):
    plan = bb.apply_freeze(fresh, 2)  # refreezing from a partly frozen state must undo it
    plan = bb.apply_freeze(fresh, FreezeDepth.parse("none").stages_of(fresh.spec))
    assert all(p.requires_grad for p in fresh.parameters())
    assert plan.trainable_params == plan.total_params == sum(p.numel() for p in fresh.parameters())
    assert "fine-tune everything" in plan.describe()


def test_frozen_stages_keep_batchnorm_statistics_in_train_mode(fresh):
    plan = bb.apply_freeze(fresh, 2)
    bb.set_train_mode(fresh, plan, train_batchnorm=True)
    frozen_items, trainable_items = fresh.stage_modules()[:2], fresh.stage_modules()[2:]
    frozen_bns = [m for items in frozen_items for it in items if isinstance(it, nn.Module) for m in it.modules() if isinstance(m, nn.BatchNorm2d)]
    trainable_bns = [m for items in trainable_items for it in items if isinstance(it, nn.Module) for m in it.modules() if isinstance(m, nn.BatchNorm2d)]
    assert frozen_bns and trainable_bns
    assert not any(m.training for m in frozen_bns) and all(m.training for m in trainable_bns)
    before = [(m.running_mean.clone(), m.running_var.clone()) for m in frozen_bns]
    trained_before = trainable_bns[-1].running_mean.clone()
    with torch.no_grad():
        fresh(torch.randn(2, 3, 64, 64) * 3 + 1)
    for m, (mean, var) in zip(frozen_bns, before):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
    assert not torch.equal(trainable_bns[-1].running_mean, trained_before)


def test_by_default_no_batchnorm_statistics_change_but_trainable_weights_still_train(fresh):
    plan = bb.apply_freeze(fresh, 2)
    bb.set_train_mode(fresh, plan)
    bns = [m for m in fresh.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [(m.running_mean.clone(), m.running_var.clone()) for m in bns]
    with torch.no_grad():
        fresh(torch.randn(2, 3, 64, 64) * 3 + 1)
    assert all(torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var) for m, (mean, var) in zip(bns, before))
    trainable_stage = fresh.stage_modules()[-1][0]
    assert trainable_stage.training or any(m.training for m in trainable_stage.modules())
    assert all(p.requires_grad for p in trainable_stage.parameters())


@pytest.mark.parametrize("value, expected", [("all", 5), ("none", 0), ("2", 2), (" ALL ", 5), (0, 0), (5, 5)])
def test_parse_freeze_depth_accepts(value, expected):
    assert FreezeDepth.parse(value).stages_of(bb.get_backbone("resnet18")) == expected


@pytest.mark.parametrize(
    "value, message",
    [("6", "out of range.*5 stages"), (6, "out of range"), ("-1", "out of range"), ("half", "must be 'all', 'none'"), ("", "must be")],
)
def test_parse_freeze_depth_refuses(value, message):
    with pytest.raises(UserError, match=message):
        FreezeDepth.parse(value).stages_of(bb.get_backbone("resnet18"))


def test_an_image_size_below_what_the_architecture_accepts_is_refused_naming_it():
    from tlstudio.core.data.preprocess import preprocessing_for

    inception = bb.get_backbone("inception_v3")
    with pytest.raises(UserError) as err:
        preprocessing_for(inception, 64)
    assert "inception_v3" in str(err.value) and "75" in str(err.value)
    assert preprocessing_for(inception, 75).input_size == 75
