"""Top losses page: fastai captions in loss order, filters, largest/smallest, capture strips."""
from __future__ import annotations

import numpy as np

from analysis.ranking import top_losses
from dashboard import loaders


def _losses(cards) -> list[float]:
    return [float(c.split(" / ")[2]) for _, c in cards]


def test_first_page_is_the_24_largest_losses(app, no_exception, gallery, view_of):
    at = app("top_losses")
    no_exception(at)
    assert len(at.get("image")) == 24, "one thumbnail per card"
    want = top_losses(loaders.evalset(view_of()), k=24)
    cards = gallery(at)
    assert {i for i, _ in cards} == set(want["image_id"])
    assert sorted(_losses(cards), reverse=True) == \
        [float(f"{x:.2f}") for x in want["loss"]]


def test_smallest_and_filters_change_the_gallery(app, no_exception, gallery, view_of):
    at = app("top_losses")
    largest = gallery(at)
    at.segmented_control(key="w:tl_order").set_value("smallest").run()
    smallest = gallery(at)
    assert max(_losses(smallest)) <= min(_losses(largest))
    assert at.query_params["tl_order"] == "smallest"
    ev = loaders.evalset(view_of())
    name = ev.classes[int(np.argmax(ev.labels.sum(axis=0)))]
    at.selectbox(key="w:tl_actual").set_value(name).run()
    no_exception(at)
    rows = np.flatnonzero(np.isin(ev.image_ids, [i for i, _ in gallery(at)]))
    assert len(rows) == 24 and ev.labels[rows, ev.classes.index(name)].all()


def test_errors_only_and_predicted_filter(app, gallery, view_of):
    view = view_of()
    ev = loaders.evalset(view)
    y_true, y_pred = loaders.targets(view)
    at = app("top_losses", tl_wrong="1", tl_order="smallest")
    ids = [i for i, _ in gallery(at)]
    rows = np.flatnonzero(np.isin(ev.image_ids, ids))
    assert len(rows) and (y_true[rows] != y_pred[rows]).all()
    pred = ev.classes[int(y_pred[rows[0]])]
    at = app("top_losses", tl_pred=pred)
    for _, caption in gallery(at):
        assert caption.split(" / ")[0] == pred


def test_sidebar_split_filters_the_gallery(app, gallery, view_of):
    ev = loaders.evalset(view_of())
    at = app("top_losses", split="val")
    ids = [i for i, _ in gallery(at)]
    split = dict(zip(ev.image_ids, ev.meta["split"].astype(str)))
    assert ids and {split[i] for i in ids} == {"val"}


def test_card_opens_its_capture_strip(app, no_exception, view_of):
    at = app("top_losses")
    at.button(key="tl_gal_0_seq").click().run()
    no_exception(at)
    head = [m.value for m in at.markdown if m.value.startswith("**Capture `")]
    assert head, "no capture strip opened"
    seq_id = head[0].split("`")[1]
    full = loaders.full_evalset(view_of())
    n = int((full.meta["seq_id"].astype(str) == seq_id).sum())
    strips = [m.value for m in at.markdown if "tl-strip-caption" in m.value]
    assert len(strips) == n and f"{n} frame(s)" in head[0]


def test_missing_images_show_labelled_placeholders(app, no_exception, monkeypatch, tmp_path,
                                                   gallery):
    monkeypatch.setenv("TRAPLENS_IMAGES", str(tmp_path))  # an image root without the files
    at = app("top_losses")
    no_exception(at)
    boxes = [h.value for h in at.html if "image missing" in h.value]
    assert len(boxes) == len(gallery(at)) == 24
    assert not at.get("image")


def test_thumbnails_are_small_and_cached(demo_small, view_of):
    from PIL import Image

    from dashboard import components

    ev = loaders.evalset(view_of())
    name = str(ev.meta["file_name"].iloc[0])
    path, why = components.thumb(str(demo_small.images_root), name)
    assert why == "" and max(Image.open(path).size) <= components.THUMB_SIZE
    assert components.thumb(str(demo_small.images_root), name) == (path, "")
    assert components.thumb(str(demo_small.images_root), "../../etc/passwd")[0] is None


def test_corrupt_image_placeholder(bad_images):
    from dashboard import components

    path, why = components.thumb(str(bad_images), "african_elephants_truncated_file.jpg")
    assert path is None and why.startswith("image ")
