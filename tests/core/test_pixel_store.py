"""Decode once: the pixel store holds what the files show, is reused while they are unchanged, and is cheap to send to workers."""

from __future__ import annotations

import os
import pickle

import numpy as np
from PIL import Image

from tests.synthetic import make_colour_dataset
from tlstudio.core.data.scan import scan_folder
from tlstudio.core.data.images import load_rgb_array
from tlstudio.core.data.pixel_store import build_pixel_store

SIZE = 48


def folder(tmp_path):
    data = make_colour_dataset(tmp_path / "data", per_class=4, size=80)
    return scan_folder(data)


def expected_square(path) -> np.ndarray:
    arr = load_rgb_array(path, short_side=SIZE)
    top, left = (arr.shape[0] - SIZE) // 2, (arr.shape[1] - SIZE) // 2
    return arr[top : top + SIZE, left : left + SIZE]


def test_each_row_is_its_file_decoded_once_and_reused_from_the_cache(tmp_path):
    index = folder(tmp_path)
    first = build_pixel_store(index.root, index.samples, SIZE, cache_dir=tmp_path / "cache")
    assert first.built and first.pixels.shape == (len(index.samples), SIZE, SIZE, 3) and first.pixels.dtype == np.uint8
    for i, sample in enumerate(index.samples):
        np.testing.assert_array_equal(first[i], expected_square(os.path.join(index.root, sample.path)))
    again = build_pixel_store(index.root, index.samples, SIZE, cache_dir=tmp_path / "cache")
    assert not again.built and again.key == first.key
    np.testing.assert_array_equal(again.pixels, first.pixels)


def test_a_changed_file_gets_new_pixels_never_stale_ones(tmp_path):
    index = folder(tmp_path)
    build_pixel_store(index.root, index.samples, SIZE, cache_dir=tmp_path / "cache")
    changed = os.path.join(index.root, index.samples[0].path)
    Image.new("RGB", (80, 80), (255, 255, 255)).save(changed, "JPEG")
    rescanned = scan_folder(index.root)
    store = build_pixel_store(rescanned.root, rescanned.samples, SIZE, cache_dir=tmp_path / "cache")
    assert store.built
    row = next(i for i, s in enumerate(rescanned.samples) if s.path == index.samples[0].path)
    assert store[row].min() >= 250  # white now, not the colour the old file had


def test_over_the_ram_budget_the_store_is_memory_mapped_and_workers_get_the_file_name_not_the_pixels(tmp_path):
    index = folder(tmp_path)
    mapped = build_pixel_store(index.root, index.samples, SIZE, cache_dir=tmp_path / "cache", ram_budget=1)
    in_ram = build_pixel_store(index.root, index.samples, SIZE, cache_dir=tmp_path / "cache")
    assert isinstance(mapped.pixels, np.memmap) and not isinstance(in_ram.pixels, np.memmap)
    for store in (mapped, in_ram):
        sent = pickle.dumps(store, protocol=pickle.HIGHEST_PROTOCOL)
        assert len(sent) < 2_000 < store.nbytes
        received = pickle.loads(sent)
        np.testing.assert_array_equal(received.pixels, store.pixels)
        assert received.key == store.key and len(received) == len(store)


def test_without_a_cache_folder_the_pixels_travel_with_the_store(tmp_path):
    index = folder(tmp_path)
    store = build_pixel_store(index.root, index.samples, SIZE)
    received = pickle.loads(pickle.dumps(store))
    np.testing.assert_array_equal(received.pixels, store.pixels)
