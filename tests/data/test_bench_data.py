"""bench/bench_data.py: the synthetic file has the published shape and loads cleanly."""
from __future__ import annotations

import json

from bench.bench_data import synthetic_file
from data.cct import load_dataset, validate


def test_synthetic_file_is_published_shape():
    path = synthetic_file(3000, seed=1)
    assert synthetic_file(3000, seed=1) == path                 # reused, not rebuilt
    text = path.read_text()
    assert '"count": NaN' in text and '"width": -1' in text     # bare NaN and sentinels
    doc = json.loads(text)
    assert list(doc) == ["info", "categories", "images", "annotations"]
    assert len(doc["images"]) == 3000
    ds = load_dataset([path])
    assert len(ds.images) == 3000 and ds.n_annotations == len(doc["annotations"])
    assert ds.images["seq_num_frames"].max() <= 3 and ds.images["frame_num"].min() == 1
    rep = validate([path])
    assert rep.usable and rep.problems == []
    assert 0.6 < rep.summary["empty_fraction"] < 0.8 and rep.summary["multi_species_images"] > 0
