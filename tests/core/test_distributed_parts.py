"""The parts of a run of several processes that need no second process: shares, batch sizes, BatchNorm."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from tlstudio.commands.processes import without_nproc
from tlstudio.core.catalog.build import build_backbone
from tlstudio.core.catalog.classifier import Classifier
from tlstudio.core.config import TrainConfig
from tlstudio.core import distributed
from tlstudio.core.distributed import Ranks
from tlstudio.core.engine.feeds import EpochSampler, steps_per_epoch
from tlstudio.core.engine.trainer import Trainer
from tlstudio.core.errors import UserError


@pytest.mark.parametrize("n,batch,world", [(100, 16, 2), (97, 12, 3), (10, 16, 2), (64, 8, 4)])
def test_the_shares_of_each_step_together_are_the_batch_of_one_process(n, batch, world):
    alone = EpochSampler(n, seed=3)
    alone.epoch = 2
    pairs = list(alone)
    shares = []
    for rank in range(world):
        sampler = EpochSampler(n, 3, Ranks(rank, world), batch)
        sampler.epoch = 2
        shares.append(list(sampler))
    assert len({len(s) for s in shares}) == 1  # every rank takes as many steps
    per_rank = batch // world
    for step in range(steps_per_epoch(n, batch) if n > batch else 1):
        together = sorted(p for s in shares for p in s[step * per_rank : (step + 1) * per_rank])
        if n > batch:
            assert together == sorted(pairs[step * batch : (step + 1) * batch])  # same pictures, same augmentation seeds
        else:
            assert set(together) <= set(pairs)


def test_batch_blocks_cover_every_item_once_in_whole_batches():
    for count, batch, world in [(100, 16, 2), (5, 16, 3), (0, 8, 2), (129, 32, 4)]:
        blocks = [Ranks(r, world).batch_block(count, batch) for r in range(world)]
        assert [i for b in blocks for i in b] == list(range(count))
        assert all(b.start % batch == 0 for b in blocks if len(b))


def test_a_batch_that_does_not_divide_among_the_processes_is_refused_before_any_file(tmp_path):
    trainer = Trainer(TrainConfig(data_dir=str(tmp_path), batch_size=30), tmp_path / "run", ranks=Ranks(0, 4))
    with pytest.raises(UserError) as refused:
        trainer._global_batch(30)
    assert "--batch-size" in str(refused.value)
    assert trainer._global_batch(32) == 32
    assert not (tmp_path / "run").exists()


def test_a_random_backbone_on_cpu_processes_is_refused_and_a_pretrained_one_keeps_its_batchnorm(tmp_path):
    scratch = Trainer(TrainConfig(data_dir=str(tmp_path)), tmp_path / "a", pretrained=False, ranks=Ranks(0, 2))
    with pytest.raises(UserError):
        scratch._refuse_unshared_batchnorm(torch.device("cpu"))
    trained = Trainer(TrainConfig(data_dir=str(tmp_path), train_batchnorm=True), tmp_path / "b", pretrained=True, ranks=Ranks(0, 2))
    trained._refuse_unshared_batchnorm(torch.device("cpu"))
    assert trained.train_batchnorm is False
    alone = Trainer(TrainConfig(data_dir=str(tmp_path), train_batchnorm=True), tmp_path / "c", pretrained=True)
    alone._refuse_unshared_batchnorm(torch.device("cpu"))
    assert alone.train_batchnorm is True


def test_synchronised_batchnorm_keeps_the_network_and_its_weights_load_into_the_exported_one():
    torch.manual_seed(0)
    model = Classifier(build_backbone("efficientnet_lite0", False, None), 3, 0.0).eval()
    x = torch.randn(2, 3, 64, 64)
    expected = model(x)
    synced = distributed.synchronised_batchnorm(copy.deepcopy(model)).eval()
    assert sum(isinstance(m, torch.nn.SyncBatchNorm) for m in synced.modules()) > 10
    assert torch.allclose(synced(x), expected, atol=1e-5)  # same answers in eval mode: no activation lost
    exported = copy.deepcopy(model)
    exported.load_state_dict(synced.state_dict())  # what the export does: the same keys
    assert torch.allclose(exported(x), expected, atol=1e-5)


def test_each_process_runs_the_command_without_nproc():
    assert without_nproc(["train", "d", "--nproc", "2", "--out", "r"]) == ["train", "d", "--out", "r"]
    assert without_nproc(["train", "--nproc=4", "d"]) == ["train", "d"]


def test_one_process_is_single_and_its_collectives_change_nothing(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ranks = distributed.from_environment()
    assert ranks == distributed.SINGLE and ranks.is_main and not ranks.active
    assert distributed.all_sum(ranks, [1.5, 2.0]) == [1.5, 2.0]
    assert distributed.from_main(ranks, {"a": 1}) == {"a": 1}
    assert np.array_equal(list(ranks.batch_block(10, 4)), np.arange(10))
