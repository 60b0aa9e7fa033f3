"""data.images: every bad-image kind, the size contract, path confinement, thumbnails."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image, ImageFile

from data import images as di
from data.images import ImageError, UnsafePath, open_image, open_in_root, resolve, thumbnail

GOOD = "african_elephants.jpg"


@pytest.mark.parametrize("name", ["african_elephants.jpg", "african_elephants_cmyk.jpg",
                                  "african_elephants_bw.jpg",
                                  "african_elephants_with_exif_orientation.jpg"])
def test_readable_kinds_become_upright_rgb(bad_images, name):
    im = open_image(bad_images / name)
    assert im.mode == "RGB" and im.size == (2048, 1536)   # EXIF 6 file is stored 1536x2048
    ref = np.asarray(open_image(bad_images / GOOD), dtype=np.float32)
    diff = np.abs(np.asarray(im, dtype=np.float32) - ref).mean()
    if name.endswith("_bw.jpg"):
        a = np.asarray(im)
        assert (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()
    else:
        assert diff < 12, f"{name} differs from the original by {diff:.1f} grey levels"


def test_exif_orientation_is_applied(bad_images):
    raw = Image.open(bad_images / "african_elephants_with_exif_orientation.jpg")
    assert raw.size == (1536, 2048) and raw.getexif().get(0x0112) == 6
    # without the transpose the picture would be 1536 wide: compare with the upright original
    upright = np.asarray(open_image(bad_images / "african_elephants_with_exif_orientation.jpg"),
                         dtype=np.float32)
    ref = np.asarray(open_image(bad_images / GOOD), dtype=np.float32)
    assert np.abs(upright - ref).mean() < 12


@pytest.mark.parametrize("flag", [False, True])
def test_truncated_raises_even_with_pil_flag(bad_images, flag, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", flag)
    for size in (None, 64):
        with pytest.raises(ImageError, match="truncated") as err:
            open_image(bad_images / "african_elephants_truncated_file.jpg", size=size)
        assert err.value.reason == "truncated"
        assert err.value.path.name == "african_elephants_truncated_file.jpg"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is flag       # restored


@pytest.mark.parametrize("size, expected", [(224, (299, 224)), (100, (133, 100)),
                                            (1536, (2048, 1536)), (4000, (2048, 1536))])
@pytest.mark.parametrize("name", [GOOD, "african_elephants_with_exif_orientation.jpg",
                                  "african_elephants_cmyk.jpg", "african_elephants_bw.jpg"])
def test_size_short_side(bad_images, size, expected, name):
    im = open_image(bad_images / name, size=size)
    assert im.size == expected and im.mode == "RGB"


def test_draft_mode_decodes_at_reduced_scale(bad_images, monkeypatch):
    seen = []
    real = Image.Image.resize

    def spy(self, sz, *a, **k):
        seen.append(self.size)
        return real(self, sz, *a, **k)

    monkeypatch.setattr(Image.Image, "resize", spy)
    for size, decoded in [(150, (256, 192)), (200, (512, 384)), (500, (1024, 768)),
                          (900, (2048, 1536))]:
        seen.clear()
        open_image(bad_images / GOOD, size=size)
        assert seen == [decoded], size   # smallest 1/8..1/1 scale whose short side >= size


def test_missing_and_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="missing") as err:
        open_image(tmp_path / "nope.jpg")
    assert err.value.reason == "missing"
    (tmp_path / "text.jpg").write_text("not a jpeg")
    with pytest.raises(ImageError) as err:
        open_image(tmp_path / "text.jpg")
    assert err.value.reason == "unreadable"
    (tmp_path / "dir.jpg").mkdir()
    with pytest.raises(ImageError) as err:
        open_image(tmp_path / "dir.jpg")
    assert err.value.reason == "unreadable"


def test_corrupt_image_data(tmp_path):
    buf = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    Image.fromarray(noise, "RGB").save(buf, "PNG")
    data = buf.getvalue()
    half = len(data) // 2
    (tmp_path / "c.png").write_bytes(data[:half] + b"\x00" * 10 + data[half + 10:])
    with pytest.raises(ImageError, match="corrupt") as err:
        open_image(tmp_path / "c.png")
    assert err.value.reason == "corrupt"


def test_decompression_bomb(bad_images, monkeypatch):
    monkeypatch.setattr(di, "MAX_PIXELS", 1_000_000)
    with pytest.raises(ImageError, match="decompression bomb") as err:
        open_image(bad_images / GOOD, size=64)
    assert err.value.reason == "decompression bomb"


@pytest.mark.parametrize("mode", ["P", "RGBA", "LA", "I;16", "L"])
def test_other_modes_become_rgb(tmp_path, mode):
    arr = (np.arange(64 * 48) % 251).reshape(48, 64).astype(np.uint8)
    im = Image.fromarray(arr, "L")
    if mode == "I;16":
        im = Image.fromarray(arr.astype(np.uint16) * 200)
    elif mode != "L":
        im = im.convert(mode)
    path = tmp_path / "x.png"
    im.save(path)
    out = open_image(path, size=24)
    assert out.mode == "RGB" and out.size == (32, 24)


def test_transparent_pixels_composited_on_white(tmp_path):
    im = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    im.save(tmp_path / "t.png")
    assert open_image(tmp_path / "t.png").getpixel((5, 5)) == (255, 255, 255)


# --- path confinement ----------------------------------------------------------------------

@pytest.mark.parametrize("name, why", [
    ("/etc/passwd", "absolute"), ("\\\\server\\share", "absolute"), ("C:\\img.jpg", "absolute"),
    ("../outside.jpg", r"'\.\.'"), ("S1/../../x.jpg", r"'\.\.'"), ("S1\\..\\..\\x", r"'\.\.'"),
    ("", "empty"), ("a\x00b", "NUL"),
])
def test_resolve_refuses_escapes(tmp_path, name, why):
    with pytest.raises(UnsafePath, match=why):
        resolve(tmp_path, name)
    with pytest.raises(UnsafePath):
        open_in_root(tmp_path, name)


def test_symlinks(tmp_path, bad_images):
    root = tmp_path / "root"
    (root / "S1").mkdir(parents=True)
    os.symlink(bad_images / GOOD, root / "S1" / "escape.jpg")
    os.symlink(bad_images, root / "outside_dir")
    (root / "S1" / "real.jpg").write_bytes((bad_images / GOOD).read_bytes())
    os.symlink(root / "S1" / "real.jpg", root / "inside.jpg")
    with pytest.raises(UnsafePath, match="outside the image root"):
        resolve(root, "S1/escape.jpg")
    with pytest.raises(UnsafePath, match="outside the image root"):
        open_in_root(root, f"outside_dir/{GOOD}")
    assert resolve(root, "inside.jpg") == (root / "S1" / "real.jpg").resolve()
    assert open_in_root(root, "S1/real.jpg", size=32).size == (43, 32)


def test_slice_images_open(serengeti_images):
    im = open_in_root(serengeti_images, "S1/D04/D04_R6/S1_D04_R6_PICT0128.JPG", size=64)
    assert im.mode == "RGB" and min(im.size) == 64


# --- thumbnails ---------------------------------------------------------------------------

def test_thumbnail_cached_and_refreshed(tmp_path, bad_images):
    root = tmp_path / "imgs"
    root.mkdir()
    src = root / "a.jpg"
    src.write_bytes((bad_images / GOOD).read_bytes())
    cache = tmp_path / "thumbs"
    t1 = thumbnail(root, "a.jpg", size=128, cache_dir=cache)
    with Image.open(t1) as im:
        assert im.format == "JPEG" and im.size == (128, 96)
    stamp = t1.stat().st_mtime_ns
    assert thumbnail(root, "a.jpg", size=128, cache_dir=cache) == t1
    assert t1.stat().st_mtime_ns == stamp                       # not rewritten
    assert thumbnail(root, "a.jpg", size=64, cache_dir=cache) != t1
    src.write_bytes((bad_images / "african_elephants_with_exif_orientation.jpg").read_bytes())
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    t2 = thumbnail(root, "a.jpg", size=128, cache_dir=cache)
    assert t2 != t1 and t2.is_file()
    assert not list(cache.rglob("*.tmp"))


def test_thumbnail_errors(tmp_path, bad_images):
    with pytest.raises(ImageError, match="truncated"):
        thumbnail(bad_images, "african_elephants_truncated_file.jpg", size=64,
                  cache_dir=tmp_path)
    with pytest.raises(ImageError, match="missing"):
        thumbnail(bad_images, "absent.jpg", size=64, cache_dir=tmp_path)
    with pytest.raises(UnsafePath):
        thumbnail(bad_images, "../bad-images/african_elephants.jpg", size=64,
                  cache_dir=tmp_path)
    assert not list(tmp_path.rglob("*.jpg")) and not list(tmp_path.rglob("*.tmp"))


# -- uploads (issue 17 case 5) ---------------------------------------------------------------
def test_odd_shaped_upload_opens_and_previews_small(tmp_path):
    from data.images import open_bounded, preview

    path = tmp_path / "wide.png"
    Image.new("RGB", (100_000, 2), (10, 200, 30)).save(path)
    assert path.stat().st_size < 2000  # a tiny file...
    im = open_bounded(path, size=512)
    assert im.size == (100_000, 2)  # ...whose short side needs no shrinking
    shown = preview(im, max_side=1024)
    assert shown.size == (1024, 1) and max(shown.size) < 65_500


def test_upload_over_the_pixel_budget_is_refused_before_decoding(tmp_path, monkeypatch):
    import numpy as np

    from data import images

    path = tmp_path / "big16.png"
    Image.fromarray(np.zeros((5000, 5000), np.uint16)).save(path)  # 25 MP of 16-bit grey
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded"))
    monkeypatch.setattr(images, "_load_strict", lambda im: pytest.fail("decoded"))
    with pytest.raises(images.ImageError, match=r"too large \(5000x5000 = 25,000,000 pixels; "
                                                r"the limit is 24,000,000\)"):
        images.open_bounded(path, size=512)


def test_upload_decodes_only_what_is_needed(tmp_path):
    import numpy as np

    from data.images import open_bounded

    jpg, png = tmp_path / "big.jpg", tmp_path / "big16.png"
    Image.new("RGB", (4000, 3000), (90, 90, 90)).save(jpg, quality=80)
    Image.fromarray((np.arange(3000 * 4000) % 65536).astype(np.uint16).reshape(3000, 4000)
                    ).save(png)
    for path in (jpg, png):
        assert open_bounded(path, size=512).size == (683, 512)


def test_concurrent_decodes_are_bounded(tmp_path, monkeypatch):
    import threading
    import time

    from data import images

    running, peak, lock = [0], [0], threading.Lock()

    def slow_open(path, *, size=None, max_pixels=images.MAX_PIXELS):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return Image.new("RGB", (8, 8))

    monkeypatch.setattr(images, "open_image", slow_open)
    threads = [threading.Thread(target=images.open_bounded, args=(tmp_path / "x.png",),
                                kwargs={"size": 8}) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == images.MAX_CONCURRENT_DECODES == 2
