"""Mask and frame I/O: formats, natural order, atomic writes, clear errors."""
import numpy as np
import pytest
from PIL import Image

from dinotools.errors import InputError
from dinotools.initializers.file import FileInitializer
from dinotools.io.frames import natural_key, open_frames
from dinotools.io.masks import PALETTE, fit_mask, read_mask, write_mask


def save(path, arr, mode=None):
    img = Image.fromarray(arr, mode=mode) if mode else Image.fromarray(arr)
    if mode == "P":
        img.putpalette(PALETTE)
    img.save(path)
    return path


def test_mask_formats(tmp_path):
    ids = np.zeros((6, 8), np.uint8)
    ids[1:3, 1:3], ids[4:, 5:] = 3, 17
    np.testing.assert_array_equal(read_mask(save(tmp_path / "p.png", ids, "P")), ids)
    np.testing.assert_array_equal(read_mask(save(tmp_path / "l.png", ids, "L")), ids)
    binary = np.where(ids > 0, 255, 0).astype(np.uint8)
    np.testing.assert_array_equal(read_mask(save(tmp_path / "b.png", binary, "L")), (ids > 0).astype(int))
    big = np.zeros((4, 4), np.int32)
    big[0, 0] = 300
    np.save(tmp_path / "m.npy", big)
    assert read_mask(tmp_path / "m.npy")[0, 0] == 300


def test_mask_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_mask(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="junk.png is not a readable image"):
        read_mask(tmp_path / "junk.png")
    save(tmp_path / "rgb.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="colour"):
        read_mask(tmp_path / "rgb.png")
    with pytest.raises(InputError, match="exceeds 255"):
        write_mask(tmp_path / "o.png", np.full((2, 2), 256))


def test_write_mask_is_palette_and_atomic(tmp_path):
    ids = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_mask(tmp_path / "a.png", ids)
    with Image.open(tmp_path / "a.png") as img:
        assert img.mode == "P"
    np.testing.assert_array_equal(read_mask(tmp_path / "a.png"), ids)
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]  # no temp file left behind


def test_write_mask_with_the_longest_name_the_file_system_takes(tmp_path):
    """Temp names are cut so that any output name that fits (255 bytes) can be written atomically."""
    path = tmp_path / ("f" * 251 + ".png")
    write_mask(path, np.ones((2, 3), np.uint8))
    assert read_mask(path).shape == (2, 3) and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_fit_mask():
    m = np.ones((480, 853), np.uint8)
    assert fit_mask(m, (480, 854), "mask x").shape == (480, 854)
    assert fit_mask(np.ones((240, 427), np.uint8), (480, 854), "half").shape == (480, 854)
    with pytest.raises(InputError, match=r"mask y is 300x300 but the frames are 854x480"):
        fit_mask(np.ones((300, 300), np.uint8), (480, 854), "mask y")


def test_frame_folder(tmp_path):
    for i in (10, 2, 1):
        save(tmp_path / f"frame{i}.png", np.full((4, 6, 3), i, np.uint8))
    src = open_frames(tmp_path)
    assert src.names == ["frame1", "frame2", "frame10"] and len(src) == 3
    assert [int(f[0, 0, 0]) for f in src] == [1, 2, 10]
    assert sorted(["a10", "a9", "a100"], key=natural_key) == ["a9", "a10", "a100"]


def test_frame_errors_and_conversion(tmp_path, caplog):
    with pytest.raises(InputError, match="holds no images"):
        open_frames(tmp_path)
    with pytest.raises(InputError, match="not found"):
        open_frames(tmp_path / "nope")
    save(tmp_path / "0.png", np.zeros((4, 6), np.uint8), "L")  # greyscale: converted
    save(tmp_path / "1.png", np.zeros((4, 6, 4), np.uint8), "RGBA")  # RGBA: converted
    save(tmp_path / "2.png", np.zeros((5, 6, 3), np.uint8))  # another size
    frames = iter(open_frames(tmp_path))
    assert next(frames).shape == (4, 6, 3) and next(frames).shape == (4, 6, 3)
    assert "greyscale" in caplog.text and "RGBA" in caplog.text
    with pytest.raises(InputError, match=r"2.png is 6x5 but the first frame is 6x4"):
        next(frames)
    (tmp_path / "3.png").write_bytes(b"corrupt")
    src = open_frames(tmp_path)
    with pytest.raises(InputError, match="3.png is unreadable or corrupt"):
        src.read(3)


def test_video_file(tmp_path):
    import cv2

    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(5):
        writer.write(np.full((24, 32, 3), 40 * i, np.uint8))
    writer.release()
    src = open_frames(path)
    frames = list(src)
    assert len(frames) == 5 and frames[0].shape == (24, 32, 3) and len(src.names) == 5
    (tmp_path / "bad.mp4").write_bytes(b"garbage")
    with pytest.raises(InputError, match="bad.mp4"):
        open_frames(tmp_path / "bad.mp4")


def test_file_initializer_folder(tmp_path):
    save(tmp_path / "00000.png", np.ones((4, 4), np.uint8), "P")
    save(tmp_path / "00005.png", np.full((4, 4), 2, np.uint8), "P")
    init = FileInitializer(tmp_path)
    names = [f"{i:05d}" for i in range(8)]
    assert sorted(init.masks(names)) == [0, 5]
    assert init(5, None)[0, 0] == 2 and init(3, None) is None
    with pytest.raises(InputError, match="not found"):
        FileInitializer(tmp_path / "none.png")
