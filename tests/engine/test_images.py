"""pytest_facebench.engine.images: every image mode becomes RGB the same way every time; bad files raise
DataError naming the file.

Oracles are pixel values worked out by hand (replicated gray, compositing on white, 16→8-bit
scaling, CMYK's naive conversion) and geometry (EXIF orientation 6 = rotate 90° clockwise).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from testkit import one_line_failure

from pytest_facebench.engine.images import check_images_exist, content_hash, load_rgb, to_rgb
from pytest_facebench.errors import DataError


def rgb(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image).astype(int)


def load_twice(path: Path) -> np.ndarray:
    """Load the file twice; both reads must give the same RGB pixels."""
    first, second = load_rgb(path), load_rgb(path)
    assert first.mode == second.mode == "RGB"
    assert first.size == second.size
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    return rgb(first)


def test_rgb_is_unchanged(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    Image.fromarray(pixels, mode="RGB").save(tmp_path / "a.png")
    np.testing.assert_array_equal(load_twice(tmp_path / "a.png"), pixels)


def test_grayscale_is_replicated(tmp_path: Path) -> None:
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5) * 12
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    out = load_twice(tmp_path / "g.png")
    assert out.shape == (4, 5, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], gray)


def test_grayscale_with_alpha_is_composited_on_white(tmp_path: Path) -> None:
    la = np.zeros((2, 2, 2), dtype=np.uint8)
    la[..., 0] = 40
    la[0, 0, 1], la[0, 1, 1], la[1, 0, 1], la[1, 1, 1] = 255, 0, 255, 0
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    out = load_twice(tmp_path / "la.png")
    np.testing.assert_array_equal(out[0, 0], [40, 40, 40])
    np.testing.assert_array_equal(out[0, 1], [255, 255, 255])


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((1, 3, 4), dtype=np.uint8)
    rgba[0, 0] = [200, 10, 50, 255]  # opaque: the colour itself
    rgba[0, 1] = [200, 10, 50, 0]  # transparent: white, whatever the colour channels say
    rgba[0, 2] = [0, 0, 0, 128]  # half-transparent black on white: 255 * (1 - 128/255) = 127
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    out = load_twice(tmp_path / "a.png")
    np.testing.assert_array_equal(out[0, 0], [200, 10, 50])
    np.testing.assert_array_equal(out[0, 1], [255, 255, 255])
    assert np.all(np.abs(out[0, 2] - 127) <= 1)


def test_palette_with_transparency_is_composited_on_white(tmp_path: Path) -> None:
    image = Image.new("P", (3, 1))
    image.putpalette([255, 0, 0, 0, 0, 255, 0, 255, 0] + [0] * (253 * 3))
    image.putdata([0, 1, 2])
    image.info["transparency"] = 1  # palette index 1 (blue) is transparent
    image.save(tmp_path / "p.png", transparency=1)
    with Image.open(tmp_path / "p.png") as raw:
        assert raw.mode == "P" and "transparency" in raw.info
    out = load_twice(tmp_path / "p.png")
    np.testing.assert_array_equal(out[0], [[255, 0, 0], [255, 255, 255], [0, 255, 0]])


def test_palette_without_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([10, 20, 30, 40, 50, 60] + [0] * (254 * 3))
    image.putdata([1, 0])
    image.save(tmp_path / "p.png")
    np.testing.assert_array_equal(load_twice(tmp_path / "p.png")[0], [[40, 50, 60], [10, 20, 30]])


def test_cmyk_becomes_rgb(tmp_path: Path) -> None:
    cmyk = np.zeros((1, 3, 4), dtype=np.uint8)
    cmyk[0, 0] = [0, 0, 0, 0]  # no ink: white
    cmyk[0, 1] = [0, 255, 255, 0]  # magenta + yellow: red
    cmyk[0, 2] = [0, 0, 0, 255]  # key: black
    Image.fromarray(cmyk, mode="CMYK").save(tmp_path / "c.tif")
    out = load_twice(tmp_path / "c.tif")
    np.testing.assert_array_equal(out[0], [[255, 255, 255], [255, 0, 0], [0, 0, 0]])


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)
    with Image.open(tmp_path / "c.jpg") as raw:
        assert raw.mode == "CMYK"
    out = load_twice(tmp_path / "c.jpg")
    assert np.all(np.abs(out - [255, 0, 0]) <= 8)


def test_16_bit_png_is_scaled_to_8_bits(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)  # 257 = 1/255 of full scale
    Image.fromarray(values).save(tmp_path / "d.png")
    with Image.open(tmp_path / "d.png") as raw:
        assert raw.mode.startswith("I;16")
    out = load_twice(tmp_path / "d.png")
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_dark_16_bit_png_is_not_brightened(tmp_path: Path) -> None:
    """A 16-bit image whose values all lie below 256 is dark, not an 8-bit image: scale by 65535."""
    values = np.array([[0, 100, 255]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "d.png")
    np.testing.assert_array_equal(load_twice(tmp_path / "d.png")[0, :, 0], [0, 0, 1])


def test_binary_image(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).convert("1").save(tmp_path / "b.png")
    np.testing.assert_array_equal(load_twice(tmp_path / "b.png")[0], [[0, 0, 0], [255, 255, 255]])


def _quadrants(width: int, height: int) -> Image.Image:
    """Red top-left quadrant, blue elsewhere (big blocks survive JPEG)."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[...] = [0, 0, 255]
    pixels[: height // 2, : width // 2] = [255, 0, 0]
    return Image.fromarray(pixels, mode="RGB")


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = _quadrants(64, 32)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the stored image must be rotated 90° clockwise for display
    image.save(tmp_path / "o.jpg", exif=exif, quality=95)
    with Image.open(tmp_path / "o.jpg") as raw:
        assert raw.size == (64, 32) and raw.getexif().get(0x0112) == 6
    out = load_twice(tmp_path / "o.jpg")
    assert out.shape == (64, 32, 3)  # (height, width): the size is transposed
    # Rotating 90° clockwise moves the stored top-left (red) quadrant to the top-right.
    assert np.all(np.abs(out[8, 24] - [255, 0, 0]) <= 40)
    assert np.all(np.abs(out[8, 8] - [0, 0, 255]) <= 40)
    assert np.all(np.abs(out[56, 24] - [0, 0, 255]) <= 40)
    # to_rgb on the opened image applies it too, and leaves the opened file's image alone.
    with Image.open(tmp_path / "o.jpg") as raw:
        assert to_rgb(raw).size == (32, 64)
        assert raw.size == (64, 32)


def test_exif_orientation_1_keeps_size(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 1
    _quadrants(64, 32).save(tmp_path / "o.jpg", exif=exif, quality=95)
    assert load_rgb(tmp_path / "o.jpg").size == (64, 32)


def test_loaded_image_outlives_the_file(tmp_path: Path) -> None:
    """load_rgb closes the file; the returned image's pixels are already in memory."""
    path = tmp_path / "a.png"
    Image.new("RGB", (4, 4), (1, 2, 3)).save(path)
    image = load_rgb(path)
    path.unlink()
    assert image.getpixel((0, 0)) == (1, 2, 3)


@pytest.mark.parametrize(
    "content",
    [b"", b"this is not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20],
    ids=["zero-bytes", "text", "bad-png-header"],
)
def test_undecodable_file_raises_data_error_naming_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken_face.png"
    path.write_bytes(content)
    with pytest.raises(DataError, match="broken_face.png"):
        load_rgb(path)


def test_truncated_image_raises_data_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.png"):
        load_rgb(path)


def test_missing_file_raises_data_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found.*ghost.png"):
        load_rgb(tmp_path / "ghost.png")


def test_check_images_exist_names_missing_and_empty_files(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    Image.new("RGB", (2, 2)).save(good)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    check_images_exist([good], "pairs.csv")
    with pytest.raises(DataError, match=r"pairs.csv: 1 of 2 image.*gone.png"):
        check_images_exist([good, tmp_path / "gone.png"], "pairs.csv")
    with pytest.raises(DataError, match=r"empty.*empty.png"):
        check_images_exist([good, empty], "pairs.csv")


def test_content_hash_depends_on_bytes_not_path(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    Image.new("RGB", (2, 2), (5, 5, 5)).save(a)
    b.write_bytes(a.read_bytes())
    Image.new("RGB", (2, 2), (6, 6, 6)).save(c)
    assert content_hash(a) == content_hash(b) != content_hash(c)


def test_an_image_deleted_mid_run_is_one_line_naming_it_and_other_cells_keep_their_results(bench) -> None:
    """The cell cache hashes a cell's images before the engine runs: a file deleted between cells was a raw
    FileNotFoundError from there (issue 20). Now every reader of the hash says which image went."""
    bench.grid(models=("pixels", "tiny"), tasks=("verif", "sim"))
    bench.test_file(
        "from pathlib import Path\n"
        "def test_x(model, task, facebench):\n"
        "    victim = Path('data/images/img09.png')\n"
        "    if model.name == 'tiny' and task.name == 'sim' and victim.exists():\n"
        "        victim.unlink()\n"
        "    facebench.evaluate(model, task)\n"
    )
    result = bench.run(cache=bench.path / "cache")
    result.assert_outcomes(passed=3, failed=1)
    line = one_line_failure(result, "test_x[tiny-sim]")
    assert line.startswith("DataError: ") and "FileNotFoundError" not in line
    assert f"image not found: {bench.data / 'images' / 'img09.png'} (it was there when the task was loaded" in line
    assert set(bench.results()["model"] + "-" + bench.results()["task"]) == {"pixels-verif", "pixels-sim", "tiny-verif"}


def test_content_hash_of_a_missing_or_unreadable_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"image not found: .*gone\.png \(it was there when the task was loaded"):
        content_hash(tmp_path / "gone.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(DataError, match=r"cannot read image .*dir\.png: Is a directory"):
        content_hash(tmp_path / "dir.png")
