"""data.cct: the loader on the real slice, the streaming reader, merging, errors, the cache."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from data import cct
from data.cct import DatasetError, load_dataset, read_cct_json
from tests.data.cct_helpers import (CATEGORIES, annotation, image, small_season,
                                    write_cct)

MONGOOSE_SEQ = "SER_S1#D04#6#43"


# --- the real fixture slice ----------------------------------------------------------------

@pytest.fixture
def slice_ds(serengeti_slice):
    return load_dataset([serengeti_slice])


def test_slice_counts(slice_ds):
    ds = slice_ds
    assert len(ds.images) == 12
    assert ds.n_annotations == 12 and len(ds.labels) == 12
    assert len(ds.sequences) == 4
    assert len(ds.categories) == 61 and len(ds.classes) == 61
    assert ds.classes[0] == "empty" and ds.classes[18] == "elephant"
    assert list(ds.categories["category_id"]) == sorted(ds.categories["category_id"])
    assert ds.problems.empty


def test_slice_dtypes(slice_ds):
    img, lab = slice_ds.images, slice_ds.labels
    expected = {"image_id": "str", "file_name": "str", "seq_id": "category",
                "frame_num": "int16", "seq_num_frames": "Int16", "location": "category",
                "season": "category", "datetime": "datetime64[ns]", "day_night": "category",
                "width": "Int32", "height": "Int32", "corrupt": "bool"}
    assert {c: str(t) for c, t in img.dtypes.items()} == expected
    assert list(lab.columns) == ["image_id", "category_id", "class", "rank", "count",
                                 "sequence_level"]
    assert list(lab["class"].cat.categories) == slice_ds.classes
    assert list(slice_ds.sequences.columns) == ["seq_id", "location", "season", "n_frames",
                                                "n_images", "start"]


def test_slice_frames_are_one_based(slice_ds):
    img = slice_ds.images
    assert sorted(img["frame_num"].unique()) == [1, 2, 3]
    assert (img.groupby("seq_id", observed=True)["frame_num"].min() == 1).all()
    assert (img["seq_num_frames"] == 3).all()
    assert set(img["season"]) == {"S1"} and set(img["location"]) == {"D04"}


def test_slice_nan_handling(slice_ds):
    lab = slice_ds.labels.set_index("image_id")
    empty = lab[lab["class"] == "empty"]
    assert len(empty) == 3 and empty["count"].isna().all()   # bare NaN -> missing
    assert set(lab.loc[lab["class"] != "empty", "count"]) == {"1"}
    assert lab["sequence_level"].all()


def test_slice_missing_frames(slice_ds):
    img = slice_ds.images.set_index("image_id")
    missing = img[img["width"].isna()]
    assert [i.rsplit("_", 1)[1] for i in missing.index] == ["PICT0276", "PICT0277"]
    assert missing["height"].isna().all()
    assert list(missing["frame_num"]) == [2, 3]
    assert img["width"].dropna().eq(2048).all()


def test_slice_mongoose_capture(slice_ds):
    ds = slice_ds
    seq = ds.images[ds.images["seq_id"] == MONGOOSE_SEQ].sort_values("frame_num")
    sets = ds.label_sets()
    assert [sets[i] for i in seq["image_id"]] == [("mongoose",)] * 3  # frames 2-3 inherit
    m, primary = ds.label_arrays(list(seq["image_id"]), ds.classes)
    assert m.shape == (3, 61) and m[:, ds.classes.index("mongoose")].all() and m.sum() == 3
    assert (primary == ds.classes.index("mongoose")).all()


def test_slice_datetime_and_day_night(slice_ds):
    img = slice_ds.images.set_index("image_id")
    first = img.loc["S1/D04/D04_R6/S1_D04_R6_PICT0020"]
    assert first["datetime"] == pd.Timestamp("2010-08-19 18:24:57")
    assert first["day_night"] == "night"      # 18:24 is outside 6..17
    assert img.loc["S1/D04/D04_R6/S1_D04_R6_PICT0128", "day_night"] == "day"
    seq = slice_ds.sequences.set_index("seq_id")
    assert seq.loc[MONGOOSE_SEQ, "start"] == pd.Timestamp("2010-08-23 11:20:43")
    assert (seq["n_images"] == 3).all() and (seq["n_frames"] == 3).all()


def test_slice_sources(slice_ds, serengeti_slice):
    (src,) = slice_ds.sources
    assert src["path"] == str(serengeti_slice.resolve())
    assert src["size"] == serengeti_slice.stat().st_size and len(src["sha256"]) == 64


def test_read_cct_json_slice(serengeti_slice):
    doc = read_cct_json(serengeti_slice)
    assert len(doc["images"]) == 12 and len(doc["categories"]) == 61
    assert np.isnan(doc["annotations"][-1]["count"])


# --- sentinels, seasons, labels ------------------------------------------------------------

def test_sentinels_and_season_from_seq_id(tmp_path):
    imgs = [image("x1", seq="SER_S3#C01#2#9", frame=1, n=-1, location="unknown", dt="unknown",
                  width=-1),
            image("x2", seq="SER_S3#C01#2#9", frame=2, n=-1, location="unknown",
                  dt="2011-01-02 07:00:00")]
    ds = load_dataset([write_cct(tmp_path / "a.json", imgs, [])], cache=False)
    img = ds.images.set_index("image_id")
    assert img["seq_num_frames"].isna().all() and img["location"].isna().all()
    assert pd.isna(img.loc["x1", "datetime"]) and pd.isna(img.loc["x1", "day_night"])
    assert img.loc["x2", "day_night"] == "day"
    assert pd.isna(img.loc["x1", "width"]) and pd.isna(img.loc["x1", "height"])
    assert list(img["season"]) == ["S3", "S3"]          # no annotation: parsed from seq_id
    assert ds.labels.empty and list(ds.label_sets()) == [(), ()]
    assert list(ds.label_arrays(["x2", "x1"], ds.classes)[1]) == [-1, -1]


@pytest.mark.parametrize("as_", [list, np.array, pd.Series, pd.Index])
def test_multi_species_labels(tmp_path, as_):
    ds = load_dataset([small_season(tmp_path / "s1.json")], cache=False)
    sets = ds.label_sets()
    assert sets["S1/A/1"] == ("zebra", "wildebeest") and sets["S1/B/1"] == ("empty",)
    classes = ["wildebeest", "zebra", "empty", "elephant"]        # any explicit order
    ids = as_(["S1/B/1", "S1/A/1", "S1/A/2", "S1/A/1"])
    m, primary = ds.label_arrays(ids, classes)
    np.testing.assert_array_equal(m, [[0, 0, 1, 0], [1, 1, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0]])
    np.testing.assert_array_equal(primary, [2, 1, 1, 1])
    lab = ds.labels.set_index(["image_id", "category_id"])
    assert lab.loc[("S1/A/1", 47), "rank"] == 1 and lab.loc[("S1/A/1", 5), "count"] == "11-50"
    assert ds.images.set_index("image_id").loc["S1/A/2", "day_night"] == "night"


@pytest.mark.parametrize("bad_ids, classes, match", [
    (["nope"], None, "not in the dataset.*'nope'"),
    (["S1/A/1"], ["zebra", "empty"], r"\['wildebeest'\] not in the given classes"),
    (["S1/A/1"], ["zebra", "zebra"], "duplicates"),
])
def test_label_arrays_refuse(tmp_path, bad_ids, classes, match):
    ds = load_dataset([small_season(tmp_path / "s1.json")], cache=False)
    with pytest.raises(DatasetError, match=match):
        ds.label_arrays(bad_ids, classes or ds.classes)


def test_merge_two_seasons(tmp_path):
    a = small_season(tmp_path / "SnapshotSerengetiS01.json", "S1")
    b = small_season(tmp_path / "SnapshotSerengetiS02.json", "S2")
    ds = load_dataset([a, b], cache=False)
    assert len(ds.images) == 6 and len(ds.labels) == 8 and ds.n_annotations == 8
    assert ds.images["season"].value_counts().to_dict() == {"S1": 3, "S2": 3}
    assert set(ds.images["location"]) == {"A01", "B02"}
    assert len(ds.sequences) == 4 and len(ds.sources) == 2
    assert ds.classes == ["empty", "zebra", "elephant", "wildebeest"]  # ascending id


def test_conflicting_category_names(tmp_path):
    a = small_season(tmp_path / "one.json", "S1")
    cats = [dict(c, name="gnu") if c["id"] == 47 else c for c in CATEGORIES]
    b = write_cct(tmp_path / "two.json", [image("y", seq="SER_S2#A#1#1", frame=1)], [], cats)
    with pytest.raises(DatasetError, match=r"47 is 'wildebeest' in .*one\.json but 'gnu' in "
                                           r".*two\.json"):
        load_dataset([a, b], cache=False)


def test_load_problems(tmp_path):
    imgs = [image("a", seq="s#1", frame=1), image("a", seq="s#1", frame=2),
            image("b", seq="s#2", frame=1, dt="19/08/2010 noon")]
    anns = [annotation("n1", "a", 5), annotation("n2", "ghost", 5), annotation("n3", "b", 99),
            annotation("n4", "a", 5)]
    ds = load_dataset([write_cct(tmp_path / "p.json", imgs, anns)], cache=False)
    got = {(k, i) for k, i in zip(ds.problems["kind"], ds.problems["id"])}
    assert got == {("duplicate_image_id", "a"), ("unknown_image", "n2"),
                   ("unknown_category", "n3"), ("duplicate_label", "a"), ("bad_datetime", "b")}
    assert len(ds.images) == 2 and list(ds.labels["image_id"]) == ["a"]
    assert ds.n_annotations == 4


# --- errors: one clear DatasetError naming the file ----------------------------------------

@pytest.mark.parametrize("text, match", [
    ('{"images": [{"id": "a"', "unexpected end of file"),
    ('{"images": [{"id": "a",}], "annotations": [], "categories": []}', "invalid JSON"),
    ("", "empty file"),
    ("[1, 2]", "top level is not a JSON object"),
    ('{"images": [{"id": "a"}]}', "missing top-level key.*'annotations', 'categories'"),
    ('{"images": [], "annotations": [], "categories": []}', "no images"),
    ('{"images": {}, "annotations": [], "categories": []}', "'images' is dict, not a list"),
    ('{"images": [1], "annotations": [], "categories": []}', r"images\[0\] is not an object"),
    ('{"images": [{"id": "a", "frame_num": "x"}], "annotations": [], "categories": []}',
     "frame_num of item 0 is 'x'"),
    ('{"images": [{"id": "a"}, {"id": "b", "width": 2147483648}], "annotations": [], '
     '"categories": []}', "width of item 1 is 2147483648, out of range"),
    ('{"images": [{"id": "a"}], "annotations": [{}, 2], "categories": []}',
     r"annotations\[1\] is not an object"),
    ('{"images": [{"id": "a"}], "annotations": [], "categories": [{"id": 1}]}',
     r"categories\[0\] lacks"),
    ('{"images": [{"id": "a"}], "annotations": [], "categories": []} x', "data after"),
])
def test_bad_files_raise_dataset_error(tmp_path, text, match):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(DatasetError, match=match) as err:
        load_dataset([path], cache=False)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset([tmp_path / "absent.json"])


def test_read_cct_json_errors(tmp_path):
    (tmp_path / "a.json").write_text('{"images": []')
    with pytest.raises(DatasetError, match="a.json: invalid JSON"):
        read_cct_json(tmp_path / "a.json")
    (tmp_path / "b.json").write_text('{"images": []}')
    with pytest.raises(DatasetError, match="b.json: missing top-level"):
        read_cct_json(tmp_path / "b.json")


# --- the streaming reader against json.loads ------------------------------------------------

TRICKY = [
    "a},{b", 'quote " inside', "back\\slash\\", 'NaN: NaN, "x": NaN', "]]", "{[", "ünï©ødé",
    '\\"', "NaN", "tail\\\\",
]


def _tricky_doc() -> dict:
    imgs = [image(f"i{k}", seq=f"SER_S1#Z{k % 3}#1#{k // 2}", frame=1 + k % 2, n=2,
                  note=TRICKY[k % len(TRICKY)], nested={"a": [1, {"b": "},{"}], "c": None})
            for k in range(40)]
    anns = [annotation(f"n{k}", f"i{k}", [0, 5, 47][k % 3],
                       count=float("nan") if k % 2 else "1") for k in range(40)]
    return {"annotations": anns, "info": {"description": TRICKY}, "images": imgs,
            "categories": CATEGORIES, "extra": [float("nan"), {"k": "NaN"}]}


@pytest.mark.parametrize("chunk", [7, 64, 1000, 1 << 20])
@pytest.mark.parametrize("indent", [None, 1])
def test_stream_reader_matches_json(tmp_path, chunk, indent):
    doc = _tricky_doc()
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc, indent=indent, ensure_ascii=bool(indent)))
    got: dict = {}
    for key, kind, obj in cct.iter_members(path, stream=("images", "annotations"),
                                           chunk_bytes=chunk):
        if kind == "start":
            got[key] = []
        elif kind == "items":
            got[key] += obj
        else:
            got[key] = obj
    expected = [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in a.items()}
                for a in doc["annotations"]]
    assert got["images"] == doc["images"]                       # strings with NaN untouched
    assert got["annotations"] == expected        # bare NaN -> None
    assert got["info"] == doc["info"] and got["categories"] == CATEGORIES
    assert got["extra"] == [None, {"k": "NaN"}]
    # raw: the file's own bytes of every value and batch, which the json module reads back
    # exactly (bare NaN included)
    regions: dict = {}
    for key, kind, (obj, raw) in cct.iter_members(path, stream=("images", "annotations"),
                                                  chunk_bytes=chunk, raw=True):
        if kind == "items":
            assert len(obj) == len(json.loads(b"[" + raw + b"]"))   # the same elements
            regions[key].append(raw)
        else:
            regions[key] = [] if kind == "start" else raw
    text = path.read_bytes()
    for key in ("images", "annotations"):
        assert all(r in text for r in regions[key])
        stitched = json.loads(b"[" + b",".join(regions[key]) + b"]")
        assert json.dumps(stitched) == json.dumps(doc[key])     # NaN compares equal here
    assert json.dumps(json.loads(regions["extra"])) == json.dumps(doc["extra"])


def test_fast_path_used_and_equal(tmp_path, monkeypatch):
    doc = _tricky_doc()
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc, indent=1))
    calls = {"fast": 0, "hit": 0}
    real = cct._fast_items

    def spy(buf):
        calls["fast"] += 1
        out = real(buf)
        calls["hit"] += out is not None
        return out

    monkeypatch.setattr(cct, "_fast_items", spy)
    got = {"images": [], "annotations": []}
    for key, kind, obj in cct.iter_members(path, stream=("images", "annotations"),
                                           chunk_bytes=2048):
        if kind == "items":
            got[key] += obj
    assert calls["hit"] >= 5 and calls["fast"] > calls["hit"]   # used, and refused sometimes
    assert got["images"] == doc["images"]
    assert [a["count"] for a in got["annotations"]] == [
        None if isinstance(a["count"], float) else a["count"] for a in doc["annotations"]]


def test_chunked_load_equals_whole(tmp_path):
    path = small_season(tmp_path / "s.json")
    a = load_dataset([path], cache=False, chunk_bytes=50)
    b = load_dataset([path], cache=False)
    pd.testing.assert_frame_equal(a.images, b.images)
    pd.testing.assert_frame_equal(a.labels, b.labels)


# --- the table cache ------------------------------------------------------------------------

def test_cache_hit_skips_parsing(tmp_path, monkeypatch):
    path = small_season(tmp_path / "s.json")
    first = load_dataset([path])
    monkeypatch.setattr(cct, "_read_source",
                        lambda *a, **k: pytest.fail("parsed again despite the cache"))
    second = load_dataset([path])
    for name in ("images", "labels", "sequences", "categories", "problems"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    assert second.classes == first.classes and second.sources == first.sources
    assert second.n_annotations == first.n_annotations


def test_cache_invalidated_when_source_changes(tmp_path):
    from data.paths import cache_dir

    path = small_season(tmp_path / "s.json")
    assert len(load_dataset([path]).images) == 3
    doc = json.loads(path.read_text())
    doc["images"].append(image("new", seq="SER_S1#C#1#1", frame=1))
    path.write_text(json.dumps(doc, indent=1))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    ds = load_dataset([path])
    assert len(ds.images) == 4 and "new" in set(ds.images["image_id"])
    assert len(list((cache_dir() / "datasets").iterdir())) == 1   # stale entry pruned


def test_cache_hit_of_untouched_files_skips_hashing(tmp_path, monkeypatch):
    """Files untouched since their entry was written (size, mtime and ctime) are not hashed
    again: a 5.3 GB file takes seconds to hash; a new ctime (any write) hashes again."""
    path = small_season(tmp_path / "s.json")
    first = load_dataset([path])
    monkeypatch.setattr(cct, "_sha256", lambda p: pytest.fail("hashed an untouched file"))
    second = load_dataset([path])
    assert second.sources == first.sources
    pd.testing.assert_frame_equal(second.images, first.images)
    os.chmod(path, 0o644)                                  # metadata only: a new ctime
    hashed = []
    monkeypatch.setattr(cct, "_sha256", lambda p: hashed.append(p) or "x" * 64)
    load_dataset([path])
    assert hashed == [path]


def test_cache_detects_same_size_same_mtime_edit(tmp_path):
    path = small_season(tmp_path / "s.json")
    load_dataset([path])
    st = path.stat()
    text = path.read_text().replace('"count": "1"', '"count": "9"')
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size
    ds = load_dataset([path])
    assert "9" in set(ds.labels["count"].dropna())              # content hash changed


def test_cache_write_failure_does_not_stop_loading(tmp_path, monkeypatch, caplog):
    def broken(entry, ds):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cct, "_write_cache", broken)
    ds = load_dataset([small_season(tmp_path / "s.json")])
    assert len(ds.images) == 3
    assert "could not write the dataset cache" in caplog.text


# --- msgspec: bare NaN rewritten outside strings only --------------------------------------

NAN_TEXTS = ["NaN", 'x": NaN, "y', 'a\\" NaN', "NaN\\\\", '\\\\"NaN', "[NaN]", "line\nNaN",
             "NaN" * 30 + " " * 70 + "NaN", "ünï NaN"]


def _nan_doc() -> tuple[list, list]:
    """Images and annotations with bare NaN in numeric fields and "NaN" inside strings."""
    imgs = [image(f"S1/N/{k}", seq=f"SER_S1#N01#1#{k}", frame=1, n=1,
                  location=NAN_TEXTS[k % len(NAN_TEXTS)], width=-1 if k == 3 else 2048,
                  note=NAN_TEXTS[(k + 1) % len(NAN_TEXTS)], nested=[float("nan"), "NaN"])
            for k in range(len(NAN_TEXTS) + 3)]
    imgs[0]["height"] = float("nan")                      # bare NaN in an integer field
    anns = [annotation(f"n{k}", f"S1/N/{k}", [0, 5, 47][k % 3],
                       count=[float("nan"), "NaN", "11-50"][k % 3]) for k in range(len(imgs))]
    return imgs, anns


@pytest.mark.parametrize("indent", [None, 1])
@pytest.mark.parametrize("chunk", [64, 1 << 20])
def test_bare_nan_read_exactly_strings_kept(tmp_path, monkeypatch, indent, chunk):
    imgs, anns = _nan_doc()
    path = write_cct(tmp_path / "nan.json", imgs, anns, indent=indent)
    assert path.read_text().count("NaN") > 2 * len(imgs)
    seen = []
    real = cct._tables.image_batch

    def spy(items, **kw):
        seen.extend(items)
        return real(items, **kw)

    monkeypatch.setattr(cct._tables, "image_batch", spy)
    monkeypatch.setattr(cct.json, "loads", lambda *a, **k: pytest.fail("json module used"))
    ds = load_dataset([path], cache=False, chunk_bytes=chunk)
    # msgspec's typed records: only the fields the loader reads, built as decoded
    assert seen and all(isinstance(rec, cct.ImageRecord) for rec in seen)
    assert not hasattr(seen[0], "note") and seen[0].height is None
    img = ds.images.set_index("image_id")
    assert list(img["location"].astype(object)) == [i["location"] for i in imgs]  # text kept
    assert pd.isna(img.loc["S1/N/0", "height"]) and img.loc["S1/N/1", "height"] == 1536
    lab = ds.labels.set_index("image_id")["count"]
    expected = [None if isinstance(a["count"], float) else a["count"] for a in anns]
    assert [None if pd.isna(c) else c for c in lab[[a["image_id"] for a in anns]]] == expected
    assert (lab == "NaN").sum() == len(imgs) // 3                 # the string stays text


def test_denan_matches_json_on_random_text():
    """Seeded random documents: msgspec on the rewritten text reads what ``json`` reads, with
    NaN as None, whatever mix of quotes, backslashes, brackets and NaN the strings hold."""
    rng = np.random.default_rng(16)
    alphabet = list('NaN"\\,:[]{} \n\tx') + ["NaN", "\\\"", "ü"]

    def value(depth):
        kind = rng.integers(0, 6 if depth < 3 else 3)
        if kind == 0:
            return float("nan")
        if kind == 1:
            return "".join(rng.choice(alphabet, size=rng.integers(0, 12)))
        if kind == 2:
            return float(rng.integers(-5, 5))
        if kind == 3:
            return [value(depth + 1) for _ in range(rng.integers(0, 4))]
        return {value_key(): value(depth + 1) for _ in range(rng.integers(0, 4))}

    def value_key():
        return "".join(rng.choice(alphabet, size=rng.integers(0, 6)))

    import msgspec

    for trial in range(300):
        doc = [value(0) for _ in range(5)]
        text = json.dumps(doc, indent=[None, 1, 0][trial % 3],
                          ensure_ascii=bool(trial % 2)).encode()
        want = json.loads(text, parse_constant=lambda c: None)
        assert msgspec.json.decode(cct._denan(text)) == want, text


@pytest.mark.parametrize("text, match", [
    ('{"images": [{"id": "a", "width": NaN, "x": "NaN"}, {"id": NaN x}], "annotations": [], '
     '"categories": []}', "invalid JSON in 'images'"),
    ('{"images": [{"id": "a", "count": NaN', "unexpected end of file"),
    ('{"images": [{"id": "a", "width": Infinity}], "annotations": [], "categories": []}',
     "invalid JSON"),
])
def test_nan_file_errors_name_the_file(tmp_path, text, match):
    path = tmp_path / "broken-nan.json"
    path.write_text(text)
    with pytest.raises(DatasetError, match=match) as err:
        load_dataset([path], cache=False)
    assert str(path) in str(err.value)


def test_fast_nan_rewrite_only_when_no_kept_text_touched(tmp_path, monkeypatch):
    """Bare NaN only in numbers and skipped fields: one fast decode per batch. "NaN" in a kept
    text (a location here) sends that batch through the exact rewrite, with the same tables."""
    exact = []
    real = cct._denan
    monkeypatch.setattr(cct, "_denan",
                        lambda text: (b"NaN" in text and exact.append(1)) or real(text))
    imgs = [image(f"S1/F/{k}", seq=f"SER_S1#F01#1#{k}", frame=1, n=1, note="NaN here",
                  width=2048) for k in range(2000)]
    anns = [annotation(f"f{k}", f"S1/F/{k}", 0, count=float("nan")) for k in range(2000)]
    clean = write_cct(tmp_path / "clean.json", imgs, anns, indent=1)
    ds = load_dataset([clean], cache=False)
    assert not exact                                        # the fast rewrite sufficed
    assert ds.labels["count"].isna().all() and len(ds.images) == 2000
    imgs[5]["location"] = "NaN site"
    touched = write_cct(tmp_path / "touched.json", imgs, anns, indent=1)
    ds = load_dataset([touched], cache=False)
    assert exact                                            # that batch was decoded exactly
    assert ds.images.set_index("image_id").loc["S1/F/5", "location"] == "NaN site"
    assert ds.labels["count"].isna().all()


def test_label_arrays_at_rows_equal_the_id_lookup(slice_ds):
    """Rows of the dataset in any order, a subset or every image in order (the fast path a
    run over the whole dataset takes) give what the id look-up gives."""
    ds = slice_ds
    ids = ds.images["image_id"].to_numpy(dtype=object)
    rng = np.random.default_rng(0)
    for rows in (np.arange(len(ids)), rng.permutation(len(ids)), rng.choice(len(ids), 7),
                 np.zeros(0, np.int64)):
        classes = list(rng.permutation(ds.classes))
        m, primary = ds.label_arrays_at(rows, classes)
        sets = ds.label_sets()
        for r, row_m, p in zip(rows, m, primary):
            got = {classes[c] for c in np.flatnonzero(row_m)}
            assert got == set(sets[ids[r]])
            assert (p == -1) if not sets[ids[r]] else classes[p] == sets[ids[r]][0]
        ref = ds.label_arrays(ids[rows].tolist(), classes)
        np.testing.assert_array_equal(m, ref[0])
        np.testing.assert_array_equal(primary, ref[1])
    assert ds.image_rows(ids).tolist() == list(range(len(ids)))              # same order
    assert ds.image_rows([ids[2], "nope", ids[0]]).tolist() == [2, -1, 0]    # look-up


def test_label_rows_with_and_without_image_order(slice_ds, tmp_path):
    """The labels' image rows come from comparing runs of ids when labels follow the images'
    order, from a hash join otherwise (shuffled labels, unlabelled images): same answer."""
    import dataclasses

    from data import tables

    for ds in (slice_ds, load_dataset([small_season(tmp_path / "s.json")], cache=False)):
        want = tables.index_in(ds.labels["image_id"], ds.images["image_id"])
        np.testing.assert_array_equal(ds._label_image_rows(), want)
        shuffled = dataclasses.replace(
            ds, labels=ds.labels.sample(frac=1, random_state=0).reset_index(drop=True))
        np.testing.assert_array_equal(shuffled._label_image_rows(), tables.index_in(
            shuffled.labels["image_id"], shuffled.images["image_id"]))
        assert shuffled.label_sets().map(set).equals(ds.label_sets().map(set))


def test_cache_hit_by_hash_records_the_new_stat(tmp_path, monkeypatch):
    """A file written again with the same content and mtime is hashed once, found in the
    cache by its hash, and not hashed on the loads after that."""
    path = small_season(tmp_path / "s.json")
    load_dataset([path])
    st = path.stat()
    path.write_bytes(path.read_bytes())                    # same bytes: a new ctime
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    monkeypatch.setattr(cct, "_read_source", lambda *a, **k: pytest.fail("parsed again"))
    assert load_dataset([path]).sources[0]["ctime_ns"] == path.stat().st_ctime_ns
    monkeypatch.setattr(cct, "_sha256", lambda p: pytest.fail("hashed an untouched file"))
    load_dataset([path])
