"""OOD score on a genuinely trained demo run (slow): a real Snapshot Serengeti photo lies far
outside what the run trained on, a held-out demo image inside it (issue 14, section 3)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.ood import run_reference, score_new_image, screen_run
from data.cct import load_dataset
from data.embeddings import load_pca
from data.images import open_image, open_in_root
from data.runs import load_run

REAL = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "serengeti-s1"
if not REAL.is_dir():  # worktrees sit one level deeper than the checkout in /work/main
    REAL = Path("/work/shared/fixtures/serengeti-s1")

pytestmark = pytest.mark.slow


def _real_photo() -> Path:
    photos = sorted(REAL.glob("S1/**/*.JPG"))
    if not photos:
        pytest.skip(f"no real photo under {REAL} (the shared Serengeti fixture is absent)")
    return photos[0]


@pytest.fixture(scope="module")
def scored(trained_demo_run):
    from training.infer import load_classifier, probabilities_and_embedding

    t = trained_demo_run
    run = load_run(t.run_dir)
    assert run.embedding is not None and run.embedding.shape[1] == 1280  # stored in full
    ref = run_reference(run)
    pca = load_pca(t.run_dir)
    bundle = load_classifier(t.run_dir / "checkpoint_best.pt", device="cpu")

    def upload(img):
        probs, emb = probabilities_and_embedding(bundle, img)
        return score_new_image(ref, emb, probs, reduction=pca)

    ds = load_dataset(t.dataset_paths)
    test_ids = run.image_ids[np.asarray(run.split) == "test"]
    files = ds.images.set_index("image_id")["file_name"]
    held_out = [upload(open_in_root(t.images_root, files[i])) for i in test_ids[:5]]
    return run, ref, upload(open_image(_real_photo())), held_out


def test_real_photo_is_far_outside_a_demo_trained_run(scored):
    _, ref, real, _ = scored
    assert real.far[0] and real.flagged[0]
    assert real.distance_rank[0] == 100.0  # farther than every validation image
    assert real.distance[0] > 1.25 * ref.distance_threshold  # measured: 0.58 vs 0.41
    assert "farther from its 5 nearest training images than 100.0 % of validation" in real.message


def test_held_out_demo_images_lie_inside(scored):
    _, ref, real, held_out = scored
    for r in held_out:
        assert not r.far[0], r.message
        assert r.distance[0] < real.distance[0] / 1.5


def test_screen_run_ranks_every_image_of_the_run(scored):
    run, _, _, _ = scored
    table = screen_run(run)
    assert len(table) == len(run.image_ids) and set(table["image_id"]) == set(run.image_ids)
    assert table["distance_rank"].is_monotonic_decreasing
    # Its own held-out images are mostly inside: few flagged as far.
    test = table[table["split"] == "test"]
    assert test["far"].mean() < 0.2
