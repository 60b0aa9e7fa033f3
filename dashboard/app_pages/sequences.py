"""Sequences: accuracy by frame position, image vs capture metrics, and sequence-label suspects.

Snapshot Serengeti labels captures, not frames, so a frame the animal has left still carries
its label (an *inherited label*) and a second species is sometimes missed. The suspects come
from ``analysis.sequences.suspects``; each is shown as its whole capture, frame by frame.
"""
from __future__ import annotations

import functools

import pandas as pd
import streamlit as st

from analysis.evalset import AGGREGATIONS
from analysis.metrics import evaluate
from analysis.plots import frame_accuracy_figure
from analysis.sequences import KINDS, frame_accuracy, suspects
from dashboard import components, loaders, state

PER_PAGE = 5
KIND_NAMES = {"inherited_label": "inherited label", "missed_species": "missed species"}


def scores(res: dict) -> dict[str, str]:
    """Headline numbers of an ``evaluate`` result as display strings."""
    lo, hi = res.get("macro_f1_ci") or (None, None)
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
    return {"accuracy": f"{res['accuracy']:.3f}", "macro F1 (95% CI)": f"{res['macro_f1']:.3f}{ci}",
            "balanced accuracy": f"{res['balanced_accuracy']:.3f}", "n": f"{int(res['n']):,}"}


view = state.current()
# once-per-run tables: prepared in the background after the run loads; show progress
components.wait_prepared(functools.partial(loaders.preparation, view))
ev = loaders.evalset(view)
st.title("Sequences")
st.caption("Captures are labelled as a whole: frames the animal has left inherit its label, "
           "and herds of two species are sometimes labelled with one.")
components.stop_if_empty(ev)

left, right = st.columns([2, 3])
with left:
    frames = loaders.cached_table(view, frame_accuracy, ev, policy=view.policy)
    components.figure(frame_accuracy_figure(frames), "frame_accuracy",
                      config={"displayModeBar": False})
with right:
    how = state.url_widget(st.segmented_control, "Capture score from its frames",
                           AGGREGATIONS, key="seq_how", default="mean", required=True,
                           help="mean or max of frame probabilities, or a majority vote")
    image = loaders.evaluate(view, level="image")
    # "mean" is what loaders.evaluate (the Overview's capture row) already computed and cached
    seq = loaders.evaluate(view, level="sequence") if how == "mean" else loaders.cached_table(
        view, evaluate, ev, policy=view.policy, level="sequence", aggregation=how)
    table = pd.DataFrame({"images": scores(image), f"captures ({how})": scores(seq)})
    st.table(table)
    gain = seq["accuracy"] - image["accuracy"]
    st.markdown(f"Scoring whole captures ({how} of frames) changes accuracy by "
                f"**{gain:+.1%}** and macro F1 by **{seq['macro_f1'] - image['macro_f1']:+.3f}**.")

st.subheader("Suspect labels")
sus = loaders.cached_table(view, suspects, ev,
                           empty_class="empty" if "empty" in ev.classes else None)
counts = sus["kind"].value_counts()
kind = state.url_widget(
    st.segmented_control, "Kind", ["all", *KINDS], key="seq_kind", default="all",
    required=True,
    format_func=lambda k: f"{KIND_NAMES.get(k, k)} "
                          f"({counts.get(k, 0) if k != 'all' else len(sus)})")
shown = sus if kind == "all" else sus[sus["kind"] == kind]
if shown.empty:
    st.info("No suspects of this kind in this view.")
    st.stop()
st.caption("Ranked by score (how strongly the model contradicts the label). Each capture shows "
           "every frame with its own prediction; ◀ marks the suspect frame. Fix them on the "
           "Relabel page.")
start, stop = components.paginate(len(shown), key="seq_sus", per_page=PER_PAGE)
full = loaders.full_evalset(view)
for r in shown.iloc[start:stop].itertuples(index=False):
    with st.container(border=True):
        st.markdown(f":orange-badge[{components.esc(KIND_NAMES.get(r.kind, r.kind))}] "
                    f"**score {r.score:.2f}** · suggested **{components.esc(r.suggested)}**  \n"
                    f"{components.esc(r.reason)}")
        components.capture_strip(full, r.seq_id, images_root=view.images_root,
                                 highlight=r.image_id)
st.page_link("app_pages/relabel.py", label="Review these in the relabel queue",
             icon=":material/edit_note:", query_params={"relabel_reason": kind}
             if kind != "all" else None)
