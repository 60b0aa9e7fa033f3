"""analysis.gallery and the EvalSet look-ups galleries use: known answers on small sets."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.evalset import aggregate_sequences, evalset_from_arrays, targets
from analysis.gallery import FACT_COLUMNS, fastai_items, frame_predictions, ranked_items
from analysis.ranking import top_losses
from tests.synth import small_evalset


@pytest.fixture
def ev():
    return small_evalset()


@pytest.fixture
def tiny():
    """Three frames of capture ``s`` (one two-species) and one frame of ``t``."""
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]],
                     np.float32)
    labels = np.array([[1, 0, 0], [1, 0, 1], [0, 0, 1], [0, 1, 0]], bool)
    meta = pd.DataFrame({"image_id": ["a", "b", "c", "d"],
                         "file_name": ["a.jpg", "b.jpg", "c.jpg", "d.jpg"],
                         "seq_id": ["s", "s", "t", "s"], "frame_num": [1, 2, 1, 3]})
    return evalset_from_arrays(probs, labels, classes=["gazelle", "lion", "zebra"], meta=meta,
                               image_ids=meta["image_id"].to_numpy(dtype=object))


@pytest.mark.parametrize("categorical", [True, False])
def test_capture_rows_match_a_scan(ev, categorical):
    if not categorical:
        ev.meta["seq_id"] = ev.meta["seq_id"].astype(str)
    seq = ev.meta["seq_id"].astype(str).to_numpy()
    for seq_id in ["cap0", "cap7", seq[-1], "no-such-capture"]:
        assert ev.capture_rows(seq_id).tolist() == np.flatnonzero(seq == seq_id).tolist()


def test_rows_of_follows_the_object(ev):
    ids = [ev.image_ids[5], ev.image_ids[0], "unknown", ev.image_ids[299]]
    assert ev.rows_of(ids).tolist() == [5, 0, -1, 299]
    other = ev.subset(np.arange(len(ev))[::-1].copy())  # another object: its own index
    assert other.rows_of(ids).tolist() == [294, 299, -1, 0]
    assert other.capture_rows(str(other.meta["seq_id"].iloc[0])).tolist()[0] == 0


def test_frame_predictions_known_answer(tiny):
    out = frame_predictions(tiny, tiny.capture_rows("s"))
    assert out["image_id"].tolist() == ["a", "b", "d"]
    assert out["predicted"].tolist() == ["gazelle", "lion", "gazelle"]
    assert out["actual"].tolist() == ["gazelle", "gazelle+zebra", "lion"]
    np.testing.assert_allclose(out["p_predicted"], [0.7, 0.6, 0.5])
    assert out["frame_num"].tolist() == [1, 2, 3] and set(out["seq_id"]) == {"s"}
    assert frame_predictions(tiny, []).empty


@pytest.mark.parametrize("policy", ["set", "primary"])
@pytest.mark.parametrize("largest", [True, False])
def test_fastai_items_loss_is_minus_log_p_actual(tiny, policy, largest):
    y_true, y_pred = targets(tiny, policy=policy)
    items = fastai_items(tiny, np.arange(4), y_true, y_pred, largest=largest)
    assert list(items.columns) == ["image_id", "file_name", "seq_id", *FACT_COLUMNS]
    np.testing.assert_allclose(items["loss"], -np.log(items["p_actual"].astype(float)),
                               rtol=1e-6)
    assert list(items["loss"]) == sorted(items["loss"], reverse=largest)
    row = items.set_index("image_id").loc["b"]
    # b: labels {gazelle, zebra}, predicted lion; set charges zebra (0.3), primary gazelle
    assert row["predicted"] == "lion"
    assert row["actual"] == ("zebra" if policy == "set" else "gazelle")


def test_ranked_items_joins_file_names_in_table_order(ev):
    table = top_losses(ev, k=7)
    items = ranked_items(ev, table)
    assert items["image_id"].tolist() == table["image_id"].astype(str).tolist()
    assert items["file_name"].tolist() == [f"{i}.JPG" for i in table["image_id"]]
    for col in FACT_COLUMNS:
        np.testing.assert_array_equal(items[col].to_numpy(), table[col].to_numpy())
    with pytest.raises(KeyError, match="'nope'"):
        ranked_items(ev, table.assign(image_id=["nope"] + table["image_id"].tolist()[1:]))


def test_fingerprint_follows_content_or_origin(ev):
    same = evalset_from_arrays(ev.probs.copy(), ev.labels.copy(), primary=ev.primary,
                               meta=ev.meta.copy(), image_ids=ev.image_ids.copy())
    assert same.fingerprint() == ev.fingerprint()
    probs = ev.probs.copy()
    probs[17] = probs[17][::-1]
    changed = evalset_from_arrays(probs, ev.labels, primary=ev.primary, meta=ev.meta,
                                  image_ids=ev.image_ids)
    assert changed.fingerprint() != ev.fingerprint()
    assert ev.subset(np.arange(10)).fingerprint() != ev.fingerprint()
    # an origin names the content without hashing it; derived sets do not inherit it
    named = evalset_from_arrays(ev.probs, ev.labels, primary=ev.primary, meta=ev.meta,
                                image_ids=ev.image_ids)
    named.origin = ("files", 1)
    assert named.fingerprint() != ev.fingerprint()
    assert named.subset(np.ones(len(ev), bool)).origin is None
    assert aggregate_sequences(named).origin is None


def test_fastai_items_limit_is_the_head_of_the_full_order(ev):
    y_true, y_pred = targets(ev, policy="set")
    rows = np.flatnonzero(y_true != y_pred)
    full = fastai_items(ev, rows, y_true, y_pred)
    head = fastai_items(ev, rows, y_true, y_pred, limit=7)
    pd.testing.assert_frame_equal(head, full.head(7))
    assert len(fastai_items(ev, rows, y_true, y_pred, limit=10**6)) == len(rows)


def test_ranked_items_uses_top_losses_rows_and_checks_them(ev):
    table = top_losses(ev, k=5)
    assert table.index.name == "row"
    np.testing.assert_array_equal(ev.image_ids[table.index], table["image_id"])
    want = ranked_items(ev, table)
    moved = table.set_axis(table.index[::-1])  # rows no longer those ids: looked up instead
    pd.testing.assert_frame_equal(ranked_items(ev, moved), want)
