"""Caches built by several processes (torchrun): the same files one process writes, reused either way,
and one rank's failure or stop ends every rank without leaving a temporary file behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.ranks import run_ranks
from tests.synthetic import make_colour_dataset
from tlstudio.core.data.pixel_store import PixelStore, build_pixel_store
from tlstudio.core.data.preprocess import Preprocessing
from tlstudio.core.data.scan import scan_folder
from tlstudio.core.distributed import SINGLE, RankFailed
from tlstudio.core.engine.features import FeatureRequest, cached_features
from tlstudio.core.errors import UserError
from tlstudio.core.events import Cancelled, StopToken, ignore_events

SIZE = 40  # the store's squares: the evaluation resize
PRE = Preprocessing(32, SIZE, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "bilinear")
REQUEST = FeatureRequest("tiny", "random:0", PRE, "light", 0, "fp32")
VIEWS = 2  # the evaluation crop and one augmented view
BATCH = 4
TRAIN_ROWS = list(range(12))  # 3 batches: rank 0 computes one, rank 1 two
EVAL_ROWS = [12, 13, 14]  # 1 batch: rank 0's block is empty


def tiny_network() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()


def features(store: PixelStore, cache, ranks=SINGLE, network=None, stop=None):
    return cached_features(REQUEST, network or tiny_network(), VIEWS, store, TRAIN_ROWS, EVAL_ROWS, torch.device("cpu"), BATCH, None,
                           False, cache, ignore_events, stop or StopToken(), ranks=ranks)


def arrays(feats) -> list[np.ndarray]:
    return [np.array(a, dtype=np.float32) for a in (*feats.train, feats.val)]


def build_both(ranks, root, samples, fresh, reused):
    """In each rank: a fresh build in ``fresh``, a build over the 1-process cache ``reused``, and one with no cache folder."""
    store = build_pixel_store(root, samples, SIZE, cache_dir=fresh, ranks=ranks)
    feats = features(store, Path(fresh), ranks)
    again = build_pixel_store(root, samples, SIZE, cache_dir=reused, ranks=ranks)
    over_one = features(again, Path(reused), ranks)
    no_cache = features(build_pixel_store(root, samples, SIZE, ranks=ranks), None, ranks)
    return {
        "built": store.built, "features": arrays(feats), "fresh_reused": feats.reused,
        "reused_built": again.built, "reused_fully": over_one.fully_reused, "no_cache": arrays(no_cache),
    }


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    base = tmp_path_factory.mktemp("parallel")
    index = scan_folder(make_colour_dataset(base / "data", per_class=6, size=48))
    one, two = base / "one", base / "two"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank runs: the same kernels, the same sums
    try:
        store = build_pixel_store(index.root, index.samples, SIZE, cache_dir=one)
        single = arrays(features(store, one))
        by_rank = run_ranks(build_both, 2, index.root, index.samples, str(two), str(one))
        reuse_two_store = build_pixel_store(index.root, index.samples, SIZE, cache_dir=two)
        reuse_two = features(reuse_two_store, two)
    finally:
        torch.set_num_threads(threads)
    return {"one": one, "two": two, "single": single, "ranks": by_rank, "store_built": reuse_two_store.built, "reuse_two": reuse_two}


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_two_ranks_write_the_pixel_store_one_process_writes_byte_for_byte(builds):
    one, two = files(builds["one"] / "pixels"), files(builds["two"] / "pixels")
    assert sorted(one) == sorted(two) and len(one) == 2  # the store and its description, nothing else
    for name in one:
        if name.endswith(".json"):
            assert json.loads(two[name]) == json.loads(one[name])
        else:
            assert two[name] == one[name]
    assert all(result["built"] for result in builds["ranks"])


def test_two_ranks_cache_the_features_one_process_computes_under_the_same_files(builds):
    assert sorted(files(builds["one"] / "features")) == sorted(files(builds["two"] / "features"))
    assert len(files(builds["two"] / "features")) == VIEWS + 1  # no part file left
    for result in builds["ranks"]:
        assert result["fresh_reused"] == 0
        for mine, single in zip(result["features"], builds["single"]):
            assert mine.shape == single.shape
            np.testing.assert_allclose(mine, single, atol=1e-6, rtol=0)
        for mine, single in zip(result["no_cache"], builds["single"]):
            np.testing.assert_allclose(mine, single, atol=1e-6, rtol=0)
    assert not np.array_equal(builds["single"][0], builds["single"][1])  # the augmented view is another view


def test_two_ranks_reuse_a_one_process_cache_and_one_process_reuses_theirs(builds):
    for result in builds["ranks"]:
        assert result["reused_built"] is False and result["reused_fully"] is True
    assert builds["store_built"] is False and builds["reuse_two"].fully_reused


def outcome(call) -> dict:
    """What a call raised, as plain values (the exceptions themselves do not travel back from a rank)."""
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - each kind is what the test looks at
        return {"kind": type(exc).__name__, "user_error": isinstance(exc, UserError), "rank": getattr(exc, "rank", None), "message": str(exc)}
    return {"kind": None}


class StopsOnFirstBatch(torch.nn.Module):
    """The network of a rank whose run is stopped (Ctrl+C, the scheduler) while it computes its first batch."""

    def __init__(self, stop: StopToken):
        super().__init__()
        self.net, self.stop = tiny_network(), stop

    def forward(self, x):
        self.stop.stop()
        return self.net(x)


def fail_on_rank_one(ranks, root, samples, cache):
    broken = outcome(lambda: build_pixel_store(root, samples, SIZE, cache_dir=cache, ranks=ranks))
    store = PixelStore(np.random.default_rng(0).integers(0, 256, (15, SIZE, SIZE, 3), dtype=np.uint8), "k", SIZE)
    stop = StopToken()
    network = StopsOnFirstBatch(stop) if ranks.rank == 1 else tiny_network()
    stopped = outcome(lambda: features(store, Path(cache), ranks, network=network, stop=stop))
    elsewhere = f"{cache}-rank{ranks.rank}"  # as on a multi-machine run given a folder that is each machine's own
    unshared = outcome(lambda: build_pixel_store(root, samples[:6], SIZE, cache_dir=elsewhere, ranks=ranks))
    return {"broken": broken, "stopped": stopped, "unshared": unshared}


def test_a_picture_gone_a_stop_or_an_unshared_cache_folder_on_one_rank_ends_both_and_leaves_no_temporary_file(tmp_path):
    index = scan_folder(make_colour_dataset(tmp_path / "data", per_class=6, size=48))
    gone = index.samples[15].path  # in rank 1's block of rows
    os.remove(os.path.join(index.root, gone))
    cache = tmp_path / "cache"
    rank0, rank1 = run_ranks(fail_on_rank_one, 2, index.root, index.samples, str(cache))
    assert rank1["broken"]["user_error"] and rank1["broken"]["rank"] == 1 and gone in rank1["broken"]["message"]
    assert rank0["broken"]["kind"] == RankFailed.__name__ and rank0["broken"]["user_error"] and rank0["broken"]["rank"] == 1
    assert gone in rank0["broken"]["message"]
    assert rank0["stopped"]["kind"] == rank1["stopped"]["kind"] == Cancelled.__name__
    assert rank1["unshared"]["user_error"] and str(tmp_path / "cache-rank1" / "pixels") in rank1["unshared"]["message"]
    assert rank0["unshared"]["kind"] == RankFailed.__name__ and rank0["unshared"]["rank"] == 1
    assert [p for p in tmp_path.glob("cache*/**/*") if p.is_file()] == []
