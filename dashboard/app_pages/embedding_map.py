"""Embedding map: what the model "sees", as a 2-D map of the run's stored embeddings.

The map (``analysis.embedding_map.map_points``: t-SNE/UMAP on a sample, the rest placed by
their nearest sampled neighbours, cached beside the run) is drawn with WebGL, up to 200,000
points; above that a density layer with a sample. A box or lasso selection is answered
exactly from its outline over every image (``selection_rows``), never from the drawn points:
the gallery shows exactly those images, and a button sends them to the relabel queue. A click
on a point shows the image and its nearest neighbours ("more like this"). Near-duplicate
groups across captures and the most isolated images are listed below.
"""
from __future__ import annotations

import streamlit as st

from analysis.embedding import EmbeddingError
from analysis.embedding_map import (COLOURS, duplicate_groups, gallery_items, isolated_images,
                                    map_figure, map_points, selection_rows, similar_images)
from analysis.gallery import frame_predictions
from dashboard import components, loaders, relabel_queue, state

#: Views larger than this get no near-duplicate / outlier lists (all-pairs cost).
MAX_PAIRWISE = 200_000
#: Gallery rows built for a selection (its first pages); the queue still gets every image.
MAX_GALLERY = 4_800

view = state.current()
st.title("Embedding map")
ev = loaders.evalset(view)
components.stop_if_empty(ev)
if loaders.load_run(view.run_path).embedding is None:
    st.info(f"Run **{view.run}** stored no embeddings. Predict it with `python -m "
            "training.predict ... --embeddings [--embedding-dim 64]` (the `make demo` runs "
            "carry them) to see its map.", icon=":material/scatter_plot:")
    st.stop()
run_dir = str(view.run_path.resolve())
full = loaders.full_evalset(view)

with st.spinner("Projecting the embedding (once per run; cached beside it)…"):
    xy = loaders.cached_table(view, map_points, ev, run_dir)
colour = state.url_widget(st.segmented_control, "Colour by", COLOURS, key="emb_colour",
                          default=COLOURS[0], required=True)
fig = loaders.cached_figure(view, map_figure, ev, xy, colour, policy=view.policy)
st.caption(f"{len(ev):,} image(s) · drag a box or draw a lasso to select (the selection counts "
           "every image inside, drawn or not) · click a point for more like it")
event = components.figure(fig, "embedding_map", key="emb_map", on_select="rerun",
                          selection_mode=("points", "box", "lasso"), width="stretch",
                          config={"displaylogo": False})
try:
    rows, clicked = selection_rows(event.selection if event else None, xy)
except EmbeddingError as exc:
    st.warning(f"That selection cannot be read: {exc}")
    rows, clicked = None, None

if rows is not None:
    st.subheader(f"Selection: {len(rows):,} image(s)")
    ids = ev.meta["image_id"].astype(str).to_numpy()[rows]
    if len(rows) and st.button(f"Send these {len(rows):,} images to the relabel queue",
                               key="emb_send", icon=":material/edit_note:", type="primary"):
        relabel_queue.send_selection(ids, source="the embedding map")
    components.image_grid(gallery_items(ev, rows[:MAX_GALLERY]), key="emb_gal",
                          images_root=view.images_root, capture_ev=full,
                          legend=(f"the first {MAX_GALLERY:,} of {len(rows):,} (all go to the "
                                  "queue)" if len(rows) > MAX_GALLERY else None),
                          empty="No images inside the selection.")
elif clicked is not None:
    item = frame_predictions(ev, [clicked]).iloc[0]
    st.subheader(f"`{item['image_id']}`")
    left, right = st.columns([1, 2])
    with left:
        components.show_image(view.images_root, str(item["file_name"]),
                              size=components.STRIP_SIZE)
        st.markdown(f"Labelled **{item['actual']}** · predicted **{item['predicted']}** "
                    f"({item['p_predicted']:.2f})")
    with right:
        st.markdown("**More like this** (nearest in embedding space, other captures)")
        near = loaders.cached_table(view, similar_images, ev, run_dir, clicked, k=8)
        items = gallery_items(ev, near["row"], score=near["similarity"], score_name="similarity")
        components.image_grid(items, key="emb_near", images_root=view.images_root,
                              capture_ev=full, per_page=8, columns=4)
else:
    st.info("Select images on the map (box or lasso) to see them here, or click one point.",
            icon=":material/touch_app:")

st.divider()
dup_tab, out_tab = st.tabs(["Near-duplicates across captures", "Most isolated images"])
if len(ev) > MAX_PAIRWISE:
    for tab in (dup_tab, out_tab):
        tab.info(f"{len(ev):,} images: narrow the view in the sidebar (split, sites, seasons) "
                 f"to at most {MAX_PAIRWISE:,} to list these.")
    st.stop()
with dup_tab:
    groups = loaders.cached_table(view, duplicate_groups, ev, run_dir)
    if groups.empty:
        st.info("No near-identical images in different captures (cosine similarity ≥ 0.97).")
    else:
        sizes = groups.groupby("group").size()
        st.caption(f"{len(sizes)} group(s) of near-identical images from different captures "
                   "(frames of one capture are alike by nature and never count).")
        g = st.selectbox("Group", sizes.index.tolist(), key="emb_group",
                         format_func=lambda i: f"group {i + 1}: {sizes[i]} images")
        members = groups[groups["group"] == g]
        components.image_grid(gallery_items(ev, members["row"], score=members["similarity"],
                                            score_name="similarity"), key="emb_dup",
                              images_root=view.images_root, capture_ev=full, per_page=12)
with out_tab:
    iso = loaders.cached_table(view, isolated_images, ev, run_dir)
    items = gallery_items(ev, iso["row"], score=iso["score"], score_name="isolation")
    st.caption("Farthest from their 10 nearest images: unusual scenes, blank or broken frames, "
               "images the model has few like.")
    components.image_grid(items, key="emb_iso", images_root=view.images_root, capture_ev=full,
                          per_page=12)
