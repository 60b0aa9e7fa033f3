"""Overview: headline metrics with intervals, run and dataset facts, worst confusions, findings."""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import streamlit as st

from analysis.confusion import most_confused
from dashboard import components, loaders, sidebar, state

view = state.current()
ev = loaders.evalset(view)
manifest = loaders.read_manifest(str(view.run_path), loaders.stamp(view.run_path / "manifest.json"))

esc = components.esc
st.title(f"Overview: {esc(manifest.get('run_id', view.run))}")
st.caption(f"{esc(manifest.get('model', {}).get('arch', 'model ?'))} · scored by "
           f"**{esc(view.policy)}** policy · split **{esc(view.split)}** · {len(ev):,} images "
           "in this view")
components.stop_if_empty(ev)

# What is prepared in the background after a large run loads (analysis.prepare: the capture
# level, the findings) says so until it is ready; the page then re-runs itself.
prepared = loaders.preparation(view)
deferred = (prepared is not None and len(ev) >= components.DEFER_ROWS
            and view.policy == "set" and ev is loaders.full_evalset(view))

# --- headline metrics at both levels ---------------------------------------------------------
for level, noun in (("image", "images"), ("sequence", "captures")):
    st.subheader(f"{noun.capitalize()}" + (" (scored per capture, mean of frames)"
                                           if level == "sequence" else ""))
    if deferred and level == "sequence":
        components.preparing_note(prepared)
        continue
    res = loaders.evaluate(view, level=level)
    c = st.columns(4)
    with c[0]:
        components.metric_card("Accuracy", res["accuracy"])
    with c[1]:
        components.metric_card("Macro F1", res["macro_f1"], res.get("macro_f1_ci"),
                               help="mean F1 over classes present; interval: bootstrap "
                                    "over whole captures")
    with c[2]:
        components.metric_card("Balanced accuracy", res["balanced_accuracy"])
    with c[3]:
        components.metric_card(noun.capitalize(), int(res["n"]))

# --- worst confusions and findings -------------------------------------------------------------
left, right = st.columns([3, 2])
y_true, y_pred = loaders.targets(view)
cm = loaders.confusion(view)
with left:
    st.subheader("Five most confused pairs")
    top = loaders.cached_table(view, most_confused, cm, ev.classes, k=5)
    if top.empty:
        st.success("No confusions in this view.")
    for r in top.itertuples(index=False):
        c1, c2 = st.columns([4, 1])
        c1.markdown(f"**{esc(r.actual)}** taken for **{esc(r.predicted)}** — {int(r.count):,} "
                    "images")
        with c2:
            components.page_link("app_pages/confusion.py", label="gallery",
                                 icon=":material/grid_on:",
                                 query_params={"cm_cell": f"{r.actual}|{r.predicted}"})


def cooccurrence_card() -> None:
    from analysis.cooccurrence import rank_pairs

    pairs = loaders.cached_table(view, rank_pairs, ev, policy=view.policy, k=1,
                                 min_together=5)
    if pairs.empty or not pairs["a_to_b_with_b"].iloc[0]:
        components.link_card("Co-occurrence", "No confusion here is explained by species "
                             "annotated together.", "app_pages/cooccurrence.py")
        return
    p = pairs.iloc[0].copy()
    p["a"], p["b"] = esc(p["a"]), esc(p["b"])
    components.link_card(
        f"Co-occurrence: {p['a']} → {p['b']}",
        f"{p['a_to_b_explained']:.0%} of the {int(p['a_to_b'])} {p['a']} → {p['b']} confusions "
        f"are on images where {p['b']} is annotated too; {p['a']} error "
        f"{p['a_error_with_b']:.0%} with {p['b']} vs {p['a_error_without_b']:.0%} without.",
        "app_pages/cooccurrence.py", label="Co-occurrence page", icon=":material/join_inner:")


def sequence_card() -> None:
    from analysis.sequences import suspects

    empty = "empty" if "empty" in ev.classes else None
    table = loaders.cached_table(view, suspects, ev, empty_class=empty)
    kinds = table["kind"].value_counts() if len(table) else pd.Series(dtype=int)
    body = (", ".join(f"{int(n):,} {k.replace('_', ' ')}" for k, n in kinds.items())
            + " suspects" if len(kinds) else "No label suspects found in captures.")
    if len(table):
        body += f". Strongest: {esc(table['reason'].iloc[0])}"
    components.link_card("Sequence labels", body, "app_pages/sequences.py",
                         label="Sequences page", icon=":material/view_carousel:")


# Worst slices: dimension label -> meta column (data.tables derives all three).
SLICE_BY = {"site": "location", "season": "season", "day / night": "day_night"}


def _focus(col: str, pick_key: str) -> None:
    sidebar.set_slice(col, st.session_state[pick_key])


def worst_slices() -> None:
    from analysis.slices import slice_table

    by = state.url_widget(st.segmented_control, "Worst by", list(SLICE_BY), key="ov_slice",
                          default="site", required=True) or "site"
    col = SLICE_BY[by]
    table = loaders.cached_table(view, slice_table, ev, by=col, policy=view.policy)
    num = st.column_config.NumberColumn
    components.table(table.head(5)[[col, "n", "accuracy", "macro_f1"]], hide_index=True,
                 column_config={col: by, "n": "images", "accuracy": num(format="%.3f"),
                                "macro_f1": num("macro F1", format="%.3f")})
    choices, pick_key = table[col].dropna().astype(str).tolist(), f"ov_slice_pick:{col}"
    if len(choices) > 1:  # one key per dimension: a site is no valid season
        pick, go = st.columns([3, 2], vertical_alignment="bottom")
        pick.selectbox(f"Show one {by}", choices, key=pick_key)
        go.button("Set as sidebar slice", key="ov_slice_apply", on_click=_focus,
                  args=(col, pick_key))


with right:
    st.subheader("Findings")
    if deferred:
        components.preparing_note(prepared)
    else:
        cooccurrence_card()
        sequence_card()
with left:
    st.subheader("Worst slices (macro F1)")
    if deferred:
        components.preparing_note(prepared)
    else:
        worst_slices()
if deferred:
    components.rerun_when_prepared(functools.partial(loaders.preparation, view))

if view.presenter:  # the room sees the headline and the findings only
    st.stop()

# --- run and dataset facts, class distribution ------------------------------------------------
st.subheader("Class distribution")
support = pd.DataFrame({"class": ev.classes, "images": np.bincount(y_true, minlength=len(ev.classes)),
                        "predicted": np.bincount(y_pred, minlength=len(ev.classes))})
support = support[(support["images"] + support["predicted"]) > 0].sort_values(
    "images", ascending=False)
# Already sorted by images: sort=False keeps that order (a column-name sort drops a series).
st.bar_chart(support, x="class", y=["images", "predicted"], stack=False, height=320,
             sort=False)

dataset = loaders.load_dataset(view.dataset_paths)
options = loaders.slice_options(view.dataset_paths)
with st.expander("Run and dataset facts", expanded=False):
    a, b = st.columns(2)
    a.markdown("**Run**")
    a.json({k: manifest.get(k) for k in ("run_id", "created_at", "model", "n_predictions")
            if k in manifest}, expanded=1)
    b.markdown("**Dataset**")
    b.json({"files": list(view.dataset_paths), "images": int(len(dataset.images)),
            "captures": int(len(dataset.sequences)), "classes": len(dataset.classes),
            # from the sidebar's categories: no pass over millions of rows
            "sites": len(options["site"]), "seasons": options["season"],
            "images without prediction": len(ev.missing)}, expanded=1)
