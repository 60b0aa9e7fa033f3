"""The embedding map page's computations: exact selections, colours, neighbours, the queue."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.embedding import EmbeddingError
from analysis.embedding_map import (colour_values, gallery_items, map_points, selection_rows,
                                    similar_images)
from analysis.evalset import build_evalset
from analysis.issues import issue_table, selection_queue
from analysis.plots import embedding_map_figure
from data.cct import load_dataset
from data.runs import load_run


def point_in_polygon(x: float, y: float, poly: np.ndarray) -> bool:
    """The textbook even-odd test, one point at a time (independent of the library's)."""
    inside = False
    n = len(poly)
    for i in range(n):
        (x1, y1), (x2, y2) = poly[i], poly[(i + 1) % n]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


@pytest.fixture(scope="module")
def synth(demo_small, synthetic_run):
    ev = build_evalset(load_dataset(demo_small.json_paths), load_run(synthetic_run))
    return ev, synthetic_run


def test_lasso_selection_is_exactly_the_point_in_polygon_set(synth):
    ev, run_dir = synth
    xy = map_points(ev, run_dir, method="pca")
    centre, span = xy.mean(axis=0), xy.std(axis=0)
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    r = 1.0 + 0.4 * np.sin(5 * t)  # a wobbly star, as a hand draws it
    poly = centre + np.c_[np.cos(t), np.sin(t)] * r[:, None] * span
    event = {"points": [{"customdata": [0]}], "point_indices": [0], "box": [],
             "lasso": [{"xref": "x", "yref": "y", "x": poly[:, 0].tolist(),
                        "y": poly[:, 1].tolist()}]}
    rows, clicked = selection_rows(event, xy)
    expected = {i for i, (x, y) in enumerate(xy.astype(float)) if point_in_polygon(x, y, poly)}
    assert clicked is None and 0 < len(expected) < len(ev)
    assert set(rows.tolist()) == expected
    ids = set(ev.meta["image_id"].astype(str).to_numpy()[rows])
    assert ids == {ev.meta["image_id"].astype(str).iloc[i] for i in expected}


def test_boxes_and_lassos_select_their_union_and_a_click_its_row():
    xy = np.array([[0.0, 0.0], [2.0, 2.0], [5.0, 5.0], [9.0, 9.0]])
    tri = {"x": [4.0, 6.0, 5.0], "y": [4.0, 4.0, 6.0]}
    rows, _ = selection_rows({"box": [{"x": [-1, 1], "y": [1, -1]}], "lasso": [tri]}, xy)
    assert rows.tolist() == [0, 2]
    assert selection_rows({"points": [{"customdata": 3}], "box": [], "lasso": []}, xy) == (None, 3)
    assert selection_rows({"points": [], "box": [], "lasso": []}, xy) == (None, None)
    assert selection_rows(None, xy) == (None, None)
    with pytest.raises(EmbeddingError, match="selection lasso"):
        selection_rows({"lasso": [{"x": [1, 2, 3], "y": [1, 2]}]}, xy)


def test_density_layer_above_the_drawn_limit_keeps_every_row_selectable():
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(5_000, 2))
    fig = embedding_map_figure(xy, np.where(xy[:, 0] > 0, "a", "b"), max_points=1_000)
    assert fig.data[0].type == "heatmap" and int(np.expm1(fig.data[0].z).round().sum()) == 5_000
    drawn = np.concatenate([t.customdata for t in fig.data[1:]])
    assert len(drawn) == 1_000 and {t.type for t in fig.data[1:]} == {"scattergl"}
    rows, _ = selection_rows({"box": [{"x": [0, 5], "y": [0, 5]}]}, xy)
    assert set(rows) == set(np.flatnonzero((xy[:, 0] >= 0) & (xy[:, 1] >= 0)))
    assert len(rows) > len(set(rows) & set(drawn))  # undrawn images are in the selection


def test_colours_and_more_like_this(synth):
    ev, run_dir = synth
    label = colour_values(ev, "label")
    assert len(label) == len(ev) and set(label) <= set(ev.classes)
    assert set(colour_values(ev, "correctness")) <= {"right", "wrong"}
    assert colour_values(ev, "loss").dtype == np.float64
    with pytest.raises(ValueError, match="colour by"):
        colour_values(ev, "mood")
    # The synthetic embedding clusters by what a frame shows: neighbours share it.
    row = int(np.flatnonzero(label == pd.Series(label).value_counts().index[0])[0])
    near = similar_images(ev, run_dir, row, k=5)
    assert len(near) == 5 and (label[near["row"]] == label[row]).mean() >= 0.8
    seq = ev.meta["seq_id"].astype(str).to_numpy()
    assert not (seq[near["row"]] == seq[row]).any()  # other captures only
    items = gallery_items(ev, near["row"], score=near["similarity"], score_name="similarity")
    assert items["caption"].str.startswith("similarity ").all()


def test_selection_queue_puts_suspects_first_then_the_rest(synth):
    ev, _ = synth
    table = issue_table(ev)
    flagged = table["image_id"].astype(str).iloc[:3].tolist()
    clean = sorted(set(ev.meta["image_id"].astype(str)) - set(table["image_id"].astype(str)))[:2]
    queue = selection_queue(ev, table, flagged + clean + ["not-an-image"], source="the map")
    assert queue["image_id"].tolist() == flagged + clean
    assert queue["kinds"].iloc[-1] == ("selected",) and queue["score"].iloc[-1] == 0
    assert {"seq_id", "location", "row"} <= set(queue.columns)
