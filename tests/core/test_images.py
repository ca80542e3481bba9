"""The one safe way to open an image: every mode to upright RGB, every hostile file refused with its reason."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFile

from tests.core.messy_folder import (
    BLUE,
    RED,
    animated_gif,
    bomb_png,
    cmyk_jpeg,
    gray16_png,
    half_transparent_png,
    jpeg_bytes,
    noise,
    rotated_jpeg,
    truncated_jpeg,
)
from tlstudio.core.data import images
from tlstudio.core.data.index import EMPTY, NOT_AN_IMAGE, TOO_MANY_PIXELS, TRUNCATED, UNREADABLE, UNSUPPORTED_MODE
from tlstudio.core.data.images import BACKGROUND, MAX_PIXELS, ImageRejected, load_rgb_array, open_image, probe


def pixel(image: Image.Image, x: int, y: int) -> np.ndarray:
    return np.asarray(image)[y, x].astype(int)


def assert_close(actual, expected, tolerance: int = 12) -> None:
    assert np.abs(np.asarray(actual, dtype=int) - np.asarray(expected, dtype=int)).max() <= tolerance, (actual, expected)


def rejected(path, **kwargs) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        open_image(path, **kwargs)
    return info.value


def test_constants_match_pillow_defaults_and_globals_stay_untouched(tmp_path):
    assert MAX_PIXELS == 89_478_485 and BACKGROUND == (255, 255, 255)
    with pytest.raises(ImageRejected):
        open_image(truncated_jpeg(tmp_path / "t.jpg"))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False and Image.MAX_IMAGE_PIXELS == MAX_PIXELS


def test_plain_rgb_jpeg_is_fully_loaded_rgb(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg_bytes(noise(40, 30, 0)))
    image = open_image(path)
    assert image.mode == "RGB" and image.size == (40, 30)
    assert probe(path) == (40, 30)


def test_cmyk_jpeg_converts_to_rgb(tmp_path):
    image = open_image(cmyk_jpeg(tmp_path / "c.jpg"))
    assert image.mode == "RGB"
    assert_close(pixel(image, 10, 10), RED)


@pytest.mark.parametrize("mode, dtype", [("I;16", "<u2"), ("I;16B", ">u2")])
def test_16_bit_mid_gray_is_scaled_not_clipped(tmp_path, mode, dtype):
    path = tmp_path / "g.tif"
    values = np.full((8, 10), 32768, dtype=dtype)
    Image.frombuffer(mode, (10, 8), values.tobytes(), "raw", mode, 0, 1).save(path)
    assert Image.open(path).mode == mode
    assert_close(pixel(open_image(path), 3, 3), (128, 128, 128), tolerance=1)


def test_16_bit_png_is_mid_gray_not_white(tmp_path):
    image = open_image(gray16_png(tmp_path / "g.png"))
    assert image.mode == "RGB"
    assert_close(pixel(image, 5, 5), (128, 128, 128), tolerance=1)
    assert_close(pixel(open_image(gray16_png(tmp_path / "w.png", 65535)), 0, 0), (255, 255, 255), tolerance=0)


def test_mode_i_holding_16_bit_data_is_scaled(tmp_path):
    path = tmp_path / "i.tif"
    Image.fromarray(np.full((6, 6), 32768, dtype=np.int32)).save(path)
    assert Image.open(path).mode == "I"
    assert_close(pixel(open_image(path), 0, 0), (128, 128, 128), tolerance=1)


def test_float_images_in_unit_range_are_multiplied_otherwise_stretched(tmp_path):
    unit = tmp_path / "unit.tif"
    Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32)).save(unit)
    assert_close(pixel(open_image(unit), 0, 0), (128, 128, 128), tolerance=1)
    wide = tmp_path / "wide.tif"
    Image.fromarray(np.array([[-1000.0, 0.0], [500.0, 1000.0]], dtype=np.float32)).save(wide)
    values = np.asarray(open_image(wide))[..., 0]
    assert values.tolist() == [[0, 128], [191, 255]]


def test_transparent_pixels_become_the_background(tmp_path):
    image = open_image(half_transparent_png(tmp_path / "a.png"))
    assert image.mode == "RGB"
    assert tuple(pixel(image, 2, 2)) == BACKGROUND
    assert tuple(pixel(image, 30, 2)) == BLUE


def test_palette_with_transparency_and_la_use_the_same_background(tmp_path):
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([0, 0, 0, *RED])
    palette.paste(1, (4, 0, 8, 8))
    palette.save(tmp_path / "p.gif", transparency=0)
    image = open_image(tmp_path / "p.gif")
    assert tuple(pixel(image, 0, 0)) == BACKGROUND and tuple(pixel(image, 6, 0)) == RED
    Image.new("LA", (4, 4), (0, 0)).save(tmp_path / "la.png")
    assert tuple(pixel(open_image(tmp_path / "la.png"), 0, 0)) == BACKGROUND


def test_gray_and_bilevel_images_become_rgb(tmp_path):
    Image.new("L", (4, 4), 77).save(tmp_path / "l.png")
    Image.new("1", (4, 4), 1).save(tmp_path / "b.bmp")
    assert tuple(pixel(open_image(tmp_path / "l.png"), 0, 0)) == (77, 77, 77)
    assert tuple(pixel(open_image(tmp_path / "b.bmp"), 0, 0)) == (255, 255, 255)


def test_animated_gif_gives_its_first_frame(tmp_path):
    image = open_image(animated_gif(tmp_path / "a.gif"))
    assert image.mode == "RGB" and image.size == (32, 24)
    assert tuple(pixel(image, 5, 5)) == RED


@pytest.mark.parametrize("orientation, red_at", [(6, (24, 8)), (8, (8, 56))])
def test_exif_orientation_is_applied(tmp_path, orientation, red_at):
    path = rotated_jpeg(tmp_path / "r.jpg", orientation)
    assert Image.open(path).size == (64, 32)  # stored landscape
    image = open_image(path)
    assert image.size == (32, 64)  # upright portrait
    assert_close(pixel(image, *red_at), RED, tolerance=30)
    assert probe(path) == (32, 64)


def test_draft_keeps_the_short_side_at_least_min_side(tmp_path):
    path = tmp_path / "big.jpg"
    path.write_bytes(jpeg_bytes(noise(800, 600, 1)))
    assert open_image(path, min_side=100).size == (200, 150)  # decoded at 1/4 scale, far less work
    for min_side in (1, 75, 76, 149, 150, 151, 299, 300, 301, 600):
        assert min(open_image(path, min_side=min_side).size) >= min_side
    assert probe(path) == (800, 600)  # the full size, though validated at a reduced scale


def test_load_rgb_array_resizes_the_short_side_exactly(tmp_path):
    path = tmp_path / "wide.jpg"
    path.write_bytes(jpeg_bytes(noise(300, 200, 2)))
    array = load_rgb_array(path, short_side=64)
    assert array.dtype == np.uint8 and array.shape == (64, 96, 3)
    tall = rotated_jpeg(tmp_path / "r.jpg", 6)  # upright 32x64
    assert load_rgb_array(tall, short_side=48).shape == (96, 48, 3)
    assert load_rgb_array(tall, short_side=32).shape == (64, 32, 3)


@pytest.mark.parametrize("min_side", [None, 1, 16])
def test_truncated_jpeg_is_refused_even_with_draft_decoding(tmp_path, min_side):
    path = truncated_jpeg(tmp_path / "t.jpg")
    assert rejected(path, min_side=min_side).reason == TRUNCATED
    with pytest.raises(ImageRejected) as info:
        probe(path)
    assert info.value.reason == TRUNCATED


def test_truncated_png_is_refused(tmp_path):
    full = tmp_path / "full.png"
    noise(64, 64, 3).save(full)
    data = full.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    assert rejected(tmp_path / "cut.png").reason == TRUNCATED


def test_empty_text_and_disguised_files_are_refused(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello")
    # Pillow's EPS reader would start Ghostscript: a .jpg must never reach it
    (tmp_path / "eps.jpg").write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    assert rejected(tmp_path / "empty.jpg").reason == EMPTY
    assert rejected(tmp_path / "text.jpg").reason == NOT_AN_IMAGE
    assert rejected(tmp_path / "eps.jpg").reason == NOT_AN_IMAGE


def test_unreadable_and_missing_files(tmp_path):
    assert rejected(tmp_path).reason == UNREADABLE  # a folder where a file was expected
    with pytest.raises(FileNotFoundError):
        open_image(tmp_path / "missing.jpg")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_bomb_above_max_pixels_is_refused_before_decoding(tmp_path):
    error = rejected(bomb_png(tmp_path / "bomb.png", 10_000, 10_000))  # 1.1 x MAX_PIXELS: Pillow only warns
    assert error.reason == TOO_MANY_PIXELS and "10000x10000" in error.detail


def test_bomb_far_above_max_pixels_is_refused(tmp_path):
    assert rejected(bomb_png(tmp_path / "bomb.png", 20_000, 10_000)).reason == TOO_MANY_PIXELS


def test_a_mode_without_rgb_conversion_is_refused():
    with pytest.raises(ImageRejected) as info:
        images._to_rgb(Image.new("La", (2, 2)))
    assert info.value.reason == UNSUPPORTED_MODE and "La" in info.value.detail
