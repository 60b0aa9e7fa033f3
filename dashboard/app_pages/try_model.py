"""Try the model: classify an uploaded photo or a dataset image with the run's checkpoint (CPU).

Pictures are size-limited (MB and ``data.images.UPLOAD_MAX_PIXELS``, checked before decoding)
and decoded by ``data.images.open_bounded`` only to the pixels the model and the preview need,
a bounded number at once; the page shows a downscaled preview (``data.images.preview``), so odd
shapes such as 100000x2 display too. The model is loaded once per checkpoint file version
(path + mtime) with ``st.cache_resource``.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from analysis.gallery import frame_predictions
from dashboard import components, loaders, state
from data.images import ImageError, UnsafePath, open_bounded, preview, resolve
from data.paths import cache_dir

MAX_UPLOAD_MB = 20
DECODE_SHORT_SIDE = 512  # >= every model input size; the preview needs no more
PREVIEW_SIDE = 1024
SOURCES = ("upload a photo", "pick a dataset image")


@st.cache_resource(show_spinner="Loading the model on the CPU…", max_entries=2)
def classifier(path: str, mtime_ns: int):
    from training.infer import load_classifier

    return load_classifier(path, device="cpu")


def uploaded_image(upload):
    """The upload as a PIL image through the one opener (it needs a file: write one)."""
    if upload.size > MAX_UPLOAD_MB * 1024 * 1024:
        raise ImageError(upload.name, f"too large ({upload.size / 2**20:.1f} MB; the limit is "
                                      f"{MAX_UPLOAD_MB} MB)")
    suffix = Path(upload.name).suffix.lower()[:8]
    with tempfile.NamedTemporaryFile(dir=cache_dir(), suffix=suffix) as tmp:
        tmp.write(upload.getbuffer())
        tmp.flush()
        return open_bounded(tmp.name, size=DECODE_SHORT_SIDE)


def ood_warning(view, bundle, image) -> None:
    """Warn, naming the evidence, when the image lies outside what the run trained on."""
    from analysis.ood import OODError, score_new_image
    from training.infer import probabilities_and_embedding

    try:
        reference, reduction = loaders.ood_reference(view)
        probs, emb = probabilities_and_embedding(bundle, image)
        result = score_new_image(reference, emb, probs, reduction=reduction)
    except OODError as exc:
        st.caption(f"No out-of-distribution check: {exc}")
        return
    if result.flagged[0]:
        st.warning(result.message + " Treat these species as a guess.",
                   icon=":material/travel_explore:")
    else:
        st.caption(f"Within what the run trained on: closer to its training images than "
                   f"{100 - result.distance_rank[0]:.0f} % of its validation images.")


view = state.current()
manifest = loaders.read_manifest(str(view.run_path), loaders.stamp(view.run_path / "manifest.json"))
st.title("Try the model")
ckpt = (manifest.get("model") or {}).get("checkpoint")
path = view.run_path / ckpt if ckpt else None
if path is None or not path.is_file():
    st.info(f"Run **{components.esc(view.run)}** has no model checkpoint to try"
            + (f" ({components.code(ckpt)} is missing from the run folder)." if ckpt else
               " (its manifest names none: synthetic runs are predictions only).")
            + " Pick a run trained with `python -m training.train` in the sidebar.",
            icon=":material/photo_camera:")
    st.stop()
bundle = classifier(str(path.resolve()), path.stat().st_mtime_ns)
st.caption(f"Run **{components.esc(view.run)}** · {components.esc(manifest['model'].get('arch', '?'))}"
           f" · checkpoint {components.code(ckpt)} · classified on the CPU")

source = state.url_widget(st.segmented_control, "Image", SOURCES, key="try_source",
                          default=SOURCES[0], required=True)
image, known = None, None
try:
    if source == SOURCES[0]:
        upload = st.file_uploader(f"A camera-trap photo (JPEG or PNG, up to {MAX_UPLOAD_MB} MB)",
                                  type=["jpg", "jpeg", "png"], key="try_upload",
                                  max_upload_size=MAX_UPLOAD_MB)
        if upload is not None:
            image = uploaded_image(upload)
    else:
        ev = loaders.evalset(view)
        components.stop_if_empty(ev)
        ids = ev.meta["image_id"].astype(str).tolist()[:1000]
        pick = state.url_widget(st.selectbox, "Dataset image (the first 1,000 of this view)",
                                ids, key="try_image", default=ids[0])
        known = frame_predictions(ev, [ids.index(pick)]).iloc[0]
        image = open_bounded(resolve(view.images_root or "", known["file_name"]),
                             size=DECODE_SHORT_SIDE)
except (ImageError, UnsafePath, OSError) as exc:
    st.error(f"This image cannot be opened: {components.esc(getattr(exc, 'reason', exc))}. "
             "Try another file.",
             icon=":material/broken_image:")
    st.stop()
if image is None:
    st.info("Upload a photo (or switch to a dataset image) to see the model's top 5 species.")
    st.stop()

from training.infer import classify  # noqa: E402  (torch is imported only when needed)

top = pd.DataFrame(classify(bundle, image, k=5), columns=["species", "probability"])
left, right = st.columns([3, 2])
left.image(preview(image, max_side=PREVIEW_SIDE), width="stretch")
with right:
    st.subheader("Top 5 species")
    components.table(top, hide_index=True, column_config={"probability": st.column_config.
                 ProgressColumn(format="%.3f", min_value=0.0, max_value=1.0)})
    if known is not None:
        st.markdown(f"Labelled **{components.esc(known['actual'])}**; the run's stored "
                    f"prediction: **{components.esc(known['predicted'])}** "
                    f"({known['p_predicted']:.2f}).")
    ood_warning(view, bundle, image)
    # The top species' card, with what the model confuses it with on this run.
    components.species_card(str(top["species"].iloc[0]), confusion=loaders.confusion(view),
                            classes=loaders.evalset(view).classes, key="try_card")
