"""analysis.slices: masks over metadata and the worst-first slice table."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from analysis.evalset import evalset_from_arrays
from analysis.slices import slice_mask, slice_table
from tests.synth import make_arrays


@pytest.fixture
def ev():
    n = 3000
    probs, y, cap = make_arrays(n, 5, seed=8)
    rng = np.random.default_rng(8)
    loc = np.array(["B03", "C05", "D04", None], dtype=object)[rng.integers(0, 4, n)]
    meta = pd.DataFrame({"image_id": np.arange(n).astype(str), "seq_id": cap.astype(str),
                         "location": pd.Categorical(loc), "season": rng.choice(["S1", "S2"], n),
                         "day_night": pd.Categorical(rng.choice(["day", "night"], n)),
                         "frame_num": rng.integers(1, 4, n).astype(np.int16),
                         "split": rng.choice(["train", "val", "test"], n)})
    # Make D04 much worse: scramble its predictions.
    bad = loc == "D04"
    probs[bad] = rng.permutation(probs[bad], axis=1)
    return evalset_from_arrays(probs, y, meta=meta)


def test_slice_mask_filters_and_lists(ev):
    m = ev.meta
    got = slice_mask(m, location=["D04", "B03"], season="S1", frame_num=[2, 3], split="test")
    ref = (m["location"].isin(["D04", "B03"]) & (m["season"] == "S1")
           & m["frame_num"].isin([2, 3]) & (m["split"] == "test")).to_numpy()
    np.testing.assert_array_equal(got, ref)
    assert slice_mask(m).all()
    assert not slice_mask(m, location="nowhere").any()
    assert slice_mask(m, day_night="night").sum() == (m["day_night"] == "night").sum()
    with pytest.raises(ValueError, match="no column 'season'"):
        slice_mask(m.drop(columns="season"), season="S1")


def test_slice_table_matches_per_slice_metrics(ev):
    table = slice_table(ev, by="location")
    assert table["location"].iloc[0] == "D04"  # worst first
    assert table["macro_f1"].is_monotonic_increasing
    assert table["n"].sum() == len(ev)
    assert None in table["location"].tolist()  # missing location is its own slice
    pred = ev.probs.argmax(1)
    for _, row in table.iterrows():
        loc = ev.meta["location"].astype(object)
        sel = loc.isna() if row["location"] is None else (loc == row["location"])
        sel = sel.to_numpy()
        assert row["macro_f1"] == pytest.approx(
            f1_score(ev.primary[sel], pred[sel], average="macro", zero_division=0), abs=1e-12)
        assert row["accuracy"] == pytest.approx((ev.primary[sel] == pred[sel]).mean())


def test_slice_table_by_two_columns_and_min_images(ev):
    table = slice_table(ev, by=["season", "day_night"], min_images=700)
    assert list(table.columns[:2]) == ["season", "day_night"]
    assert (table["n"] >= 700).all()
    with pytest.raises(ValueError, match="no column"):
        slice_table(ev, by="camera")
