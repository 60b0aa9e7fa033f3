"""data.runs: the one run-folder writer and reader."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data.runs import MANIFEST, PREDICTIONS, PredictionsError, list_runs, load_run, write_run
from tests.synth import make_arrays

MANIFEST_BASE = {"dataset": {"paths": [], "sha256": [], "images_root": None},
                 "model": {"arch": "test"}, "training": {}, "software": {}}


def _write(run_dir, n=50, c=4, dtype=np.float32, seed=0, **kw):
    probs, _, _ = make_arrays(n, c, seed=seed)
    ids = np.array([f"img{i}" for i in range(n)], dtype=object)
    manifest = {**MANIFEST_BASE, "classes": [f"k{i}" for i in range(c)]}
    write_run(run_dir, manifest=manifest, image_ids=ids, probs=probs.astype(dtype),
              split="test", **kw)
    return ids, probs


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_round_trip(tmp_path, dtype):
    ids, probs = _write(tmp_path / "r", dtype=dtype)
    run = load_run(tmp_path / "r")
    assert run.probs.dtype == np.float32 and run.probs.shape == (50, 4)
    np.testing.assert_allclose(run.probs, probs.astype(dtype), rtol=0, atol=0)
    assert run.image_ids.tolist() == ids.tolist()
    assert set(run.split) == {"test"} and run.embedding is None
    assert run.manifest["n_predictions"] == 50 and run.manifest["unreadable"] == []
    assert run.run_id == "r" and run.classes == ["k0", "k1", "k2", "k3"]
    stored = pq.read_schema(tmp_path / "r" / PREDICTIONS).field("probs").type
    assert str(stored.value_type) == ("halffloat" if dtype == np.float16 else "float")
    assert not run.probs.flags.writeable  # the cached arrays are shared: read-only


def test_float32_probs_are_not_copied(tmp_path):
    _write(tmp_path / "r")
    assert not load_run(tmp_path / "r").probs.flags.owndata  # a view on the Arrow buffer


def test_embedding_and_cache_invalidation(tmp_path):
    emb = np.random.default_rng(0).normal(size=(50, 8))
    _write(tmp_path / "r", embedding=emb)
    run = load_run(tmp_path / "r")
    assert run.embedding.dtype == np.float16 and run.embedding.shape == (50, 8)
    assert load_run(tmp_path / "r") is run  # cached
    _write(tmp_path / "r", seed=1)
    st = (tmp_path / "r" / PREDICTIONS).stat()
    os.utime(tmp_path / "r" / PREDICTIONS, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = load_run(tmp_path / "r")
    assert again is not run and not np.array_equal(again.probs, run.probs)


def test_invalid_predictions_write_nothing(tmp_path):
    probs = np.full((3, 2), 0.7)
    with pytest.raises(PredictionsError, match=r"row 0 \(image_id 'a'\) sums to 1.4"):
        write_run(tmp_path / "r", manifest={**MANIFEST_BASE, "classes": ["x", "y"]},
                  image_ids=["a", "b", "c"], probs=probs, split="test")
    assert not (tmp_path / "r" / PREDICTIONS).exists()
    with pytest.raises(PredictionsError, match="column 'split': 2 values for 3 rows"):
        write_run(tmp_path / "r", manifest={**MANIFEST_BASE, "classes": ["x", "y"]},
                  image_ids=["a", "b", "c"], probs=np.full((3, 2), 0.5), split=["a", "b"])
    with pytest.raises(PredictionsError, match=r"manifest lacks key\(s\) \['training'\]"):
        write_run(tmp_path / "r", manifest={k: v for k, v in MANIFEST_BASE.items()
                                            if k != "training"} | {"classes": ["x", "y"]},
                  image_ids=["a"], probs=np.full((1, 2), 0.5), split="test")


def test_write_leaves_no_temporary_files(tmp_path):
    _write(tmp_path / "r")
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [MANIFEST, PREDICTIONS]


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(PredictionsError, match=r"manifest.json: file not found"):
        load_run(tmp_path / "nothing")
    _write(tmp_path / "r")
    (tmp_path / "r" / PREDICTIONS).write_bytes(b"not parquet")
    with pytest.raises(PredictionsError, match=r"predictions.parquet: unreadable Parquet"):
        load_run(tmp_path / "r")
    (tmp_path / "r" / MANIFEST).write_text("{broken")
    with pytest.raises(PredictionsError, match=r"manifest.json: not valid JSON"):
        load_run(tmp_path / "r")


def test_load_refuses_a_tampered_file(tmp_path):
    _write(tmp_path / "r")
    manifest = json.loads((tmp_path / "r" / MANIFEST).read_text())
    manifest["classes"] = manifest["classes"][:3]
    (tmp_path / "r" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(PredictionsError, match="vectors have length 4 but the manifest lists 3"):
        load_run(tmp_path / "r")


def test_list_runs(tmp_path):
    assert list_runs(tmp_path / "none") == []
    _write(tmp_path / "b")
    _write(tmp_path / "a")
    (tmp_path / "c").mkdir()
    assert [p.name for p in list_runs(tmp_path)] == ["a", "b"]


def test_multi_row_group_files_are_read_group_by_group(tmp_path):
    ids, probs = _write(tmp_path / "r", n=300)
    table = pq.read_table(tmp_path / "r" / PREDICTIONS)
    pq.write_table(table, tmp_path / "r" / PREDICTIONS, row_group_size=64)
    assert pq.ParquetFile(tmp_path / "r" / PREDICTIONS).metadata.num_row_groups == 5
    run = load_run(tmp_path / "r")
    np.testing.assert_array_equal(run.probs, probs)
    assert run.image_ids.tolist() == ids.tolist()
    bad = table.column("probs").combine_chunks()
    vals = bad.values.to_numpy(zero_copy_only=False).copy()
    vals[200 * 4 + 1] = np.nan  # row 200: in the fourth group
    table = table.set_column(1, "probs", pa.FixedSizeListArray.from_arrays(pa.array(vals), 4))
    pq.write_table(table, tmp_path / "r" / PREDICTIONS, row_group_size=64)
    with pytest.raises(PredictionsError, match=r"row 200 \(image_id 'img200'\) contains NaN"):
        load_run(tmp_path / "r")


@pytest.mark.parametrize("ids, row", [
    (["a", "b", "c", "d"], None),
    (["a", "b", "a", "a"], 2),
    (["x" * 37 + "1", "x" * 37 + "2", "y", "x" * 37 + "2"], 3),   # longer than one word
    (["a", "a\0", "a\0\0"], None),          # differ only where the padding goes
    (["", "b", ""], 2),
    (["zèbre", "zebre", "gnou", "zèbre"], 3),  # non-ASCII: Arrow's hash table
    (["é", "e"], None),
])
@pytest.mark.parametrize("collide", [False, True])
def test_first_repeat_is_exact(monkeypatch, ids, row, collide):
    from data import runs as schema

    if collide:  # every hash equal: the exact comparison alone must decide
        monkeypatch.setattr(schema, "_hash_rows", lambda w: np.zeros(len(w), np.uint64))
    assert schema.first_repeat(pa.chunked_array([pa.array(ids[:2], pa.string()),
                                                  pa.array(ids[2:], pa.string())])) == row
    assert schema.first_repeat(pa.array(ids, pa.large_string())) == row


@pytest.mark.parametrize("block", [1 << 18, 7])  # 7: hash blocks straddle the chunks
def test_first_repeat_matches_pandas_on_random_ids(monkeypatch, block):
    from data import runs as schema

    monkeypatch.setattr(schema, "_HASH_BLOCK", block)
    rng = np.random.default_rng(3)
    for _ in range(20):
        ids = [f"S{rng.integers(3)}/IMAG{rng.integers(40):04d}" for _ in range(30)]
        flags = pd.Index(ids).duplicated()
        expected = int(np.flatnonzero(flags)[0]) if flags.any() else None
        assert schema.first_repeat(pa.array(ids)) == expected
        assert schema.first_repeat(pa.chunked_array([pa.array(ids[:10]),
                                                     pa.array(ids[10:])])) == expected


def test_duplicate_ids_are_refused_in_multi_row_group_files(tmp_path):
    ids, _ = _write(tmp_path / "r", n=300)
    table = pq.read_table(tmp_path / "r" / PREDICTIONS)
    dup = ids.copy()
    dup[250] = dup[17]
    table = table.set_column(0, "image_id", pa.array(dup, pa.string()))
    pq.write_table(table, tmp_path / "r" / PREDICTIONS, row_group_size=64)
    with pytest.raises(PredictionsError, match=r"column 'image_id': duplicate id 'img17' "
                                               r"\(row 250\)"):
        load_run(tmp_path / "r")


def test_float16_conversion_is_exact_for_every_bit_pattern():
    from data.runs import probs_matrix

    half = np.arange(1 << 16, dtype=np.uint16).view(np.float16).reshape(-1, 8)
    item = pa.field("item", pa.float16(), nullable=False)
    col = pa.chunked_array([pa.FixedSizeListArray.from_arrays(pa.array(part.reshape(-1)),
                                                              type=pa.list_(item, 8))
                            for part in np.array_split(half, 3)])
    got = probs_matrix(col, path="p", n_classes=8)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, half.astype(np.float32))  # NaN == NaN here


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_checks_fused_into_reading_report_the_first_row(tmp_path, dtype):
    # 3 row groups of 5000 rows, blocks of 4096 rows: a negative value in an early block must
    # not hide a bad sum further on (sums are reported first, as check_probs does).
    _write(tmp_path / "r", n=15_000, dtype=dtype)
    table = pq.read_table(tmp_path / "r" / PREDICTIONS)
    vals = table.column("probs").combine_chunks().values.to_numpy(zero_copy_only=False).copy()
    vals[4100 * 4:4100 * 4 + 2] = [-0.25, 0.25 + vals[4100 * 4] + vals[4100 * 4 + 1]]
    vals[12_000 * 4] += 0.5
    table = table.set_column(1, "probs", pa.FixedSizeListArray.from_arrays(
        pa.array(vals), type=table.schema.field("probs").type))
    pq.write_table(table, tmp_path / "r" / PREDICTIONS, row_group_size=5000)
    with pytest.raises(PredictionsError, match=r"row 12000 \(image_id 'img12000'\) sums to"):
        load_run(tmp_path / "r")
    vals[12_000 * 4] -= 0.5
    table = table.set_column(1, "probs", pa.FixedSizeListArray.from_arrays(
        pa.array(vals), type=table.schema.field("probs").type))
    pq.write_table(table, tmp_path / "r" / PREDICTIONS, row_group_size=5000)
    with pytest.raises(PredictionsError, match=r"row 4100 \(image_id 'img4100'\) has a "
                                               r"negative probability -0.25"):
        load_run(tmp_path / "r")
