"""Relabel queue: review label-issue candidates one at a time and record decisions.

Candidates are ``analysis.ranking.label_issues`` of the view's images scored against the
*uncorrected* labels, so the queue stays put while decisions accumulate; an image leaves the
queue once it or its capture has a decision in ``data.curation.DecisionStore``
(``data.paths.curation_db()``). Keys: A accept, L set labels, E empty, U unsure, S skip, Z undo.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis.ranking import label_issues
from dashboard import components, loaders, state
from data.curation import (FORMATS, DecisionError, DecisionStore, ExportError, download_name,
                           export_bytes, parse_labels)
from data.paths import curation_db

ANY = "(any)"
ACTIONS = [("accept", "Accept", "A", "labels := the model's suggestion"),
           ("set", "Set labels", "L", "labels := the species chosen above"),
           ("empty", "Empty", "E", "no animal: labels := empty"),
           ("unsure", "Unsure", "U", "recorded, labels unchanged"),
           ("skip", "Skip", "S", "recorded, labels unchanged")]
KIND_NAMES = {"inherited_label": "inherited label", "missed_species": "missed species",
              "confident_learning": "confident learning", "top_loss": "top loss"}


def store() -> DecisionStore:
    return DecisionStore(curation_db())  # never cached: each call opens short connections


def act(action: str, item: dict, dataset, curator: str, run_id: str) -> None:
    """Button callback: record one decision on the frame or the whole capture, or undo."""
    try:
        if action == "undo":
            done = store().undo(curator=curator, dataset=dataset)
            msg = f"Undid decision #{done}." if done else "Nothing left to undo."
        else:
            capture = st.session_state.get("relabel_scope") == "whole capture"
            labels = {"accept": parse_labels(item["suggested"]),
                      "set": st.session_state.get(f"relabel_labels:{item['image_id']}")
                      }.get(action)
            item_id = item["seq_id"] if capture else item["image_id"]
            store().record(dataset, curator=curator, item_id=item_id, action=action,
                           scope="capture" if capture else "image", labels=labels or None,
                           reason=item["reason"], run_id=run_id)
            msg = f"{action} → {'capture' if capture else 'frame'} `{item_id}`" + (
                f" = {', '.join(labels)}" if labels else "")
        st.session_state["relabel_flash"] = ("success", msg)
    except DecisionError as exc:
        st.session_state["relabel_flash"] = ("error", str(exc))


def select(label: str, key: str, options: list[str]) -> str:
    return state.url_widget(st.selectbox, label, options, key=key, default=ANY)


view = state.current()
dataset = loaders.load_dataset(view.dataset_paths)
st.title("Relabel queue")
curator = st.session_state.get("relabel_curator") or state.get_param("relabel_curator")
if not curator:
    name = st.text_input("Your name", key="relabel_name", help="recorded with every decision")
    st.button("Start curating", type="primary", key="relabel_start")
    if name.strip():  # Enter in the field or the button: both commit the name
        st.session_state["relabel_curator"] = name.strip()
        st.rerun()
    st.info("Tell TrapLens who you are once; the name stays for this session and in the URL.")
    st.stop()
st.session_state["relabel_curator"] = curator
state.set_param("relabel_curator", curator)

base = view.with_(corrected=False)  # a stable queue: candidates from the labels as published
ev = loaders.evalset(base)
issues = loaders.cached_table("relabel:label_issues", base, label_issues, ev)
rows = pd.Index(ev.image_ids).get_indexer(issues["image_id"])
cand = issues.assign(seq_id=ev.meta["seq_id"].astype(str).to_numpy()[rows],
                     site=ev.meta["location"].astype(str).to_numpy()[rows])

f1, f2, f3 = st.columns(3)
with f1:
    reason = select("Reason", "relabel_reason", [ANY] + sorted({k for ks in cand["kinds"]
                                                                for k in ks}))
with f2:
    klass = select("Labelled class", "relabel_class",
                   [ANY] + sorted({c for g in cand["given"] for c in g}))
with f3:
    site = select("Site", "relabel_site", [ANY] + sorted(set(cand["site"])))
keep = (((reason == ANY) | cand["kinds"].map(lambda ks: reason in ks))
        & ((klass == ANY) | cand["given"].map(lambda g: klass in g))
        & ((site == ANY) | (cand["site"] == site)))
cand = cand[keep.to_numpy(bool)]
decided = store().decided_ids()
done = cand["image_id"].isin(decided).to_numpy() | cand["seq_id"].isin(decided).to_numpy()
queue = cand[~done]

flash = st.session_state.pop("relabel_flash", None)
if flash:
    (st.success if flash[0] == "success" else st.error)(flash[1])
st.progress(done.sum() / max(len(cand), 1),
            text=f"**{int(done.sum())} of {len(cand)}** candidates decided · {len(queue)} to go "
                 f"· curating as **{curator}**")
if queue.empty:
    st.success("Nothing left in this queue. Change the filters or export your work below.")
else:
    item = queue.iloc[0].to_dict()
    st.subheader(f"`{item['image_id']}` · score {item['score']:.2f}")
    st.markdown(" ".join(f":orange-badge[{KIND_NAMES.get(k, k)}]" for k in item["kinds"]))
    st.markdown(f"**Why:** {item['reason']}  \n**Labelled:** {', '.join(item['given'])} · "
                f"**Model suggests:** {item['suggested']} · site {item['site']}")
    c1, c2 = st.columns([1, 2])
    c1.segmented_control("Apply to", ["this frame", "whole capture"], key="relabel_scope",
                         default="this frame", required=True)
    c2.multiselect("Labels (for Set labels)", dataset.classes,
                   key=f"relabel_labels:{item['image_id']}",
                   default=[c for c in parse_labels(item["suggested"]) or ()
                            if c in dataset.classes])
    args = (item, dataset, curator, view.run)
    cols = st.columns(len(ACTIONS) + 1)
    for col, (action, label, key, what) in zip(cols, ACTIONS):
        col.button(label, key=f"relabel_{action}", shortcut=key, on_click=act, help=what,
                   args=(action, *args), type="primary" if action == "accept" else "secondary")
    cols[-1].button("Undo", key="relabel_undo", shortcut="Z", on_click=act,
                    args=("undo", *args), icon=":material/undo:",
                    help="revert your latest decision")
    components.capture_strip(loaders.full_evalset(base), item["seq_id"],
                             images_root=view.images_root, highlight=item["image_id"])
    with st.expander(f"Up next ({len(queue) - 1})"):  # st.table: plain HTML, no canvas
        st.table(queue.iloc[1:11][["image_id", "score", "given", "suggested", "reason"]]
                 .set_index("image_id").round(2))

history = store().decisions()
mine = history[history["curator"] == curator].tail(10).iloc[::-1]
with st.expander(f"Your latest decisions ({len(mine)})", expanded=not mine.empty):
    if mine.empty:
        st.caption("None yet.")
    else:
        st.table(mine.assign(ts=mine["ts"].dt.strftime("%H:%M:%S"),
                             labels_before=mine["labels_before"].map(", ".join),
                             labels_after=mine["labels_after"].map(", ".join)).set_index("id")[
            ["ts", "scope", "item_id", "action", "labels_before", "labels_after"]])
with st.expander("Export the corrected dataset"):
    fmt = st.segmented_control("Format", list(FORMATS), key="relabel_fmt", default="coco",
                               required=True)
    extra = {}
    if fmt == "camtrapdp":
        sites = st.file_uploader(
            "Camera sites, for a complete package with deployments and media (CSV: location, "
            "latitude, longitude [, coordinateUncertainty]); without it, observations only",
            type="csv", key="relabel_sites")
        if sites is not None:
            try:
                extra["locations"] = loaders.sites_file(view.dataset_paths, sites.name,
                                                        sites.getvalue())
            except ExportError as exc:
                st.error(f"Camera sites not used: {exc}", icon=":material/error:")
    name = download_name(dataset, fmt)
    st.download_button(f"Download {fmt} export", key="relabel_download", file_name=name,
                       data=lambda: export_bytes(dataset, store(), format=fmt, **extra),
                       icon=":material/download:",
                       mime="application/zip" if name.endswith(".zip") else None)
    st.caption("Same as `python -m data export --format " + fmt + "`; switch on *Apply "
               "curated corrections* in the sidebar to score every page with your fixes.")
