"""AppTest of the try-the-model page: friendly without a checkpoint; top 5 with one."""
from __future__ import annotations

import shutil

import pytest

from tests.synth import attach_tiny_checkpoint


def test_run_without_checkpoint_gets_a_friendly_message(app, no_exception, texts):
    at = app("try_model", run="synthetic")
    no_exception(at)
    assert "has no model checkpoint" in texts(at)
    assert not at.get("file_uploader")


@pytest.fixture
def tiny_run(tmp_path, dashboard_runs, monkeypatch):
    """A copy of the synthetic run with a tiny (untrained, seeded) timm checkpoint."""
    run = tmp_path / "runs" / "tiny"
    shutil.copytree(dashboard_runs / "synthetic", run)
    attach_tiny_checkpoint(run)
    monkeypatch.setenv("TRAPLENS_RUNS", str(run.parent))
    return run


def test_dataset_image_is_classified_top5(app, no_exception, tiny_run, demo_small):
    from data.cct import load_dataset
    from data.images import open_in_root
    from training.infer import classify, load_classifier

    at = app("try_model", run="tiny", try_source="pick a dataset image")
    no_exception(at)
    table = at.dataframe[0].value
    image_id = at.selectbox(key="w:try_image").value
    images = load_dataset(demo_small.json_paths).images.set_index("image_id")
    pil = open_in_root(demo_small.images_root, images.loc[image_id, "file_name"],
                       size=512)  # the page decodes to DECODE_SHORT_SIDE, no more
    expected = classify(load_classifier(tiny_run / "checkpoint_best.pt"), pil, k=5)
    assert list(table["species"]) == [c for c, _ in expected]
    assert table["probability"].round(4).tolist() == [round(p, 4) for _, p in expected]

    other = at.selectbox(key="w:try_image").options[5]
    at.selectbox(key="w:try_image").set_value(other).run()
    no_exception(at)
    assert at.query_params["try_image"] in (other, [other])
    assert "Labelled **" in "\n".join(m.value for m in at.markdown)


def test_upload_mode_waits_for_a_file(app, no_exception, texts, tiny_run):
    at = app("try_model", run="tiny")
    no_exception(at)
    assert "Upload a photo" in texts(at)
    assert not at.dataframe
