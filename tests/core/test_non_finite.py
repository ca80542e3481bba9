"""Nothing non-finite is trained on, checkpointed or exported: a damaged weight stops the run at once, with what to try."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.recorder import Recorder
from tests.synthetic import make_colour_dataset
from tlstudio.core.catalog import backbones as bb
from tlstudio.core.config import TrainConfig
from tlstudio.core.engine.callbacks import NonFiniteTraining
from tlstudio.core.errors import UserError
from tlstudio.core.events import EpochEnded, Failed
from tlstudio.core.inference.export import export_torchscript, first_non_finite
from tlstudio.core.data.preprocess import preprocessing_for
from tlstudio.core.runs.files import FAILED, RunFiles
from tlstudio.core.engine.trainer import Trainer
from tlstudio.core.catalog.weights import load_state_dict


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    return make_colour_dataset(tmp_path_factory.mktemp("nan") / "colours", per_class=8)


def poisoned(name_part: str):
    """The real ImageNet weights with one NaN in the first tensor whose name holds ``name_part``."""

    def loader(spec):
        state = dict(load_state_dict(spec))
        key = next(k for k in state if name_part in k and state[k].is_floating_point() and state[k].ndim == 4)
        state[key] = state[key].clone().contiguous()
        state[key][0, 0, 0, 0] = float("nan")
        return state

    return loader


def test_a_damaged_weight_stops_a_fine_tune_at_its_first_step_and_leaves_nothing_non_finite(colours, tmp_path):
    cfg = TrainConfig(data_dir=str(colours), freeze_depth="3", epochs=3, batch_size=8, image_size=64, feature_cache=False, warm_start_head=False)
    events = Recorder()
    run = tmp_path / "run"
    with pytest.raises(NonFiniteTraining) as stopped:
        Trainer(cfg, run, cache_dir=tmp_path / "cache", state_dict_loader=poisoned("conv_stem")).run(events)
    assert (stopped.value.epoch, stopped.value.step, stopped.value.what) == (1, 1, "loss")
    assert isinstance(events[-1], Failed) and not events.of(EpochEnded)
    files = RunFiles(run)
    assert files.read_status().state == FAILED and not files.read_status().evaluable
    assert not files.model.exists() and not files.last.exists() and not files.read_history()


def test_a_frozen_backbone_with_a_damaged_weight_is_refused_before_a_head_is_fitted(colours, tmp_path):
    cfg = TrainConfig(data_dir=str(colours), freeze_depth="all", epochs=1, batch_size=8, image_size=64)
    with pytest.raises(UserError):
        Trainer(cfg, tmp_path / "run", cache_dir=tmp_path / "cache", state_dict_loader=poisoned("blocks")).run()
    assert not (tmp_path / "run" / "model.pt").exists()


def test_export_refuses_a_network_with_a_non_finite_tensor_and_names_it(tmp_path):
    spec = bb.get_backbone("efficientnet_lite0")
    network = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 224 * 224, 2))
    with torch.no_grad():
        network[1].bias[1] = float("inf")
    assert first_non_finite(network) == "1.bias"
    with pytest.raises(UserError) as refused:
        export_torchscript(network, preprocessing_for(spec, None), ["a", "b"], {}, tmp_path / "model.pt")
    assert "1.bias" in str(refused.value)
    assert not (tmp_path / "model.pt").exists()
