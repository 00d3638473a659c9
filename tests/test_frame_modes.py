"""Issue 12, defects 3-5: every frame mode converted as documented or refused; cut-short videos; bad entries."""
import logging
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from dinotools.errors import InputError
from dinotools.io.convert import video_to_rgb
from dinotools.io.frames import open_frames

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)
GREY16 = RNG.integers(0, 65536, (6, 8), dtype=np.uint16)


def _read(tmp_path, img, name="00000.png", **save):
    img.save(tmp_path / name, **save)
    return next(iter(open_frames(tmp_path)))


def _expected_16(v):
    """round(v / 257), computed in float64 (the documented 16 -> 8-bit rule)."""
    return np.floor(v.astype(np.float64) / 257 + 0.5).astype(np.uint8)


def test_16bit_grey_png_is_scaled_not_white(tmp_path, caplog):
    """Reproduction: 16-bit greyscale PNG frames were read as all-white."""
    frame = _read(tmp_path, Image.fromarray(GREY16))
    np.testing.assert_array_equal(frame, np.repeat(_expected_16(GREY16)[:, :, None], 3, axis=2))
    assert "16-bit greyscale; scaled to 8 bits (value / 257)" in caplog.text
    assert _expected_16(np.array([0, 257, 65535])).tolist() == [0, 1, 255]


def test_16bit_rgb_png_keeps_the_high_byte_and_says_so(tmp_path, caplog):
    bgr16 = RNG.integers(0, 65536, (6, 8, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "00000.png"), bgr16)
    frame = next(iter(open_frames(tmp_path)))
    np.testing.assert_array_equal(frame, (bgr16[:, :, ::-1] >> 8).astype(np.uint8))
    assert "16-bit RGB; reduced to 8 bits" in caplog.text


@pytest.mark.parametrize("mode,ext,expected", [
    ("L", ".png", lambda img: np.repeat(np.asarray(img)[:, :, None], 3, axis=2)),
    ("1", ".png", lambda img: np.repeat((np.asarray(img) * 255).astype(np.uint8)[:, :, None], 3, axis=2)),
    ("P", ".png", lambda img: np.asarray(img.convert("RGB"))),
    ("LA", ".png", lambda img: np.repeat(np.asarray(img)[:, :, :1], 3, axis=2)),
    ("RGBA", ".png", lambda img: np.asarray(img)[:, :, :3]),
    ("CMYK", ".tif", lambda img: np.asarray(img.convert("RGB"))),
    ("YCbCr", ".tif", lambda img: np.asarray(img.convert("RGB"))),
    ("LAB", ".tif", lambda img: np.asarray(img.convert("RGB"))),
])
def test_each_pil_mode_is_converted_to_rgb_with_a_warning(tmp_path, caplog, mode, ext, expected):
    img = Image.fromarray(RGB).convert(mode)
    if mode in ("LA", "RGBA"):  # a real alpha channel: colours must be kept as stored, alpha dropped
        alpha = Image.fromarray(RNG.integers(0, 256, (6, 8), dtype=np.uint8))
        img.putalpha(alpha)
    frame = _read(tmp_path, img, "00000" + ext)
    reread = Image.open(tmp_path / ("00000" + ext))
    np.testing.assert_array_equal(frame, expected(reread))
    assert frame.dtype == np.uint8 and frame.shape == (6, 8, 3) and frame.flags.c_contiguous
    assert "converted" in caplog.text or "scaled" in caplog.text


def test_palette_with_transparency_drops_it(tmp_path, caplog):
    img = Image.fromarray(RGB).convert("P")
    frame = _read(tmp_path, img, transparency=0)
    np.testing.assert_array_equal(frame, np.asarray(img.convert("RGB")))
    assert "palette with transparency" in caplog.text


def test_32bit_integer_frames(tmp_path, caplog):
    frame = _read(tmp_path, Image.fromarray(GREY16.astype(np.int32)), "00000.tif")
    np.testing.assert_array_equal(frame[:, :, 0], _expected_16(GREY16))
    assert "32-bit integer" in caplog.text
    Image.fromarray(np.full((6, 8), 70000, np.int32)).save(tmp_path / "00001.tif")
    with pytest.raises(InputError, match=r"00001.tif is a 32-bit integer image with values 70000..70000"):
        list(open_frames(tmp_path))


def test_float_frames_are_refused_naming_the_file(tmp_path):
    Image.fromarray(np.zeros((6, 8), np.float32)).save(tmp_path / "00000.tif")
    with pytest.raises(InputError, match=r"00000.tif is a 32-bit float image"):
        list(open_frames(tmp_path))


def test_every_frame_of_a_video_gets_the_same_conversion(tmp_path, caplog):
    """Decisions are per mode, never per content: a dark and a bright 16-bit frame scale alike."""
    Image.fromarray(np.full((6, 8), 1000, np.uint16)).save(tmp_path / "00000.png")
    Image.fromarray(np.full((6, 8), 60000, np.uint16)).save(tmp_path / "00001.png")
    dark, bright = list(open_frames(tmp_path))
    assert dark[0, 0, 0] == 4 and bright[0, 0, 0] == 233  # round(1000/257), round(60000/257)
    assert caplog.text.count("16-bit greyscale") == 1  # one warning per kind


@pytest.mark.parametrize("arr,expected", [
    (np.full((4, 5, 3), (10, 20, 30), np.uint8), (30, 20, 10)),  # BGR -> RGB
    (np.full((4, 5), 77, np.uint8), (77, 77, 77)),  # grey
    (np.full((4, 5, 1), 77, np.uint8), (77, 77, 77)),  # grey with a channel axis
    (np.full((4, 5, 4), (10, 20, 30, 0), np.uint8), (30, 20, 10)),  # BGRA: alpha dropped
    (np.full((4, 5, 3), (257 * 10, 257 * 20, 65535), np.uint16), (255, 20, 10)),  # 16-bit
])
def test_opencv_frames(arr, expected):
    out = video_to_rgb(arr, "video v frame 0", set())
    assert out.dtype == np.uint8 and out.shape == (4, 5, 3) and out.flags.c_contiguous
    assert tuple(out[0, 0]) == expected


def test_opencv_float_frames_are_refused():
    with pytest.raises(InputError, match="video v frame 3 decodes to float32"):
        video_to_rgb(np.zeros((4, 5, 3), np.float32), "video v frame 3", set())


def _avi(path, n):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(n):
        writer.write(np.full((24, 32, 3), (7 * i) % 256, np.uint8))
    writer.release()


def test_video_cut_mid_file_is_said_with_both_counts(tmp_path, caplog):
    """Reproduction: a video corrupted mid-file was cut short silently (47 of 90 frames, exit 0)."""
    _avi(tmp_path / "v.avi", 40)
    data = (tmp_path / "v.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    src = open_frames(tmp_path / "cut.avi")
    decoded = sum(1 for _ in src)
    assert len(src) == src.decoded == decoded and 0 < decoded < 40 and src.announced == 40
    assert f"only {decoded} of the 40 frames its container announces" in caplog.text
    strict = open_frames(tmp_path / "cut.avi", strict=True)
    with pytest.raises(InputError, match=rf"only {decoded} of the 40 frames.*--strict"):
        list(strict)


def test_unreadable_entries_that_look_like_frames_are_errors(tmp_path, caplog):
    """Reproduction: a dangling symlink among the frames was silently dropped (a gap in the names)."""
    for i in range(3):
        Image.fromarray(RGB).save(tmp_path / f"{i:05d}.png")
    os.symlink(tmp_path / "gone.png", tmp_path / "00003.png")
    with pytest.raises(InputError, match=r"00003.png cannot be read \(a link to .*gone.png that does not exist\)"):
        open_frames(tmp_path)
    os.unlink(tmp_path / "00003.png")
    (tmp_path / "00003.png").mkdir()
    with pytest.raises(InputError, match="00003.png is not a regular file"):
        open_frames(tmp_path)
    os.rmdir(tmp_path / "00003.png")
    Image.fromarray(RGB).save(tmp_path / "00001.jpg")
    with pytest.raises(InputError, match="00001.jpg and 00001.png in .* have the same name"):
        open_frames(tmp_path)
    os.unlink(tmp_path / "00001.jpg")
    (tmp_path / "._00001.png").write_bytes(b"\x00\x05\x16\x07")  # a macOS resource-fork copy
    caplog.set_level(logging.WARNING)
    assert open_frames(tmp_path).names == ["00000", "00001", "00002"]
    assert "skipped 1 hidden file(s) such as ._00001.png" in caplog.text
