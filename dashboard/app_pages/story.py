"""Story: the selected run's findings, one screen each, in the fixed order of ``analysis.story``.

A large headline written from the numbers (``analysis.story.build_story`` over the report's
story keys, ``analysis.report.build.story_report``, computed for this view), the figure under
it (``analysis.report.figures.section_figure``), Previous / Next buttons bound to the left and
right arrow keys, and the step in the URL (``?story_step=<key>``).
"""
from __future__ import annotations

import html

import streamlit as st

from analysis.report.build import story_report
from analysis.report.figures import section_figure
from analysis.story import build_story
from dashboard import components, loaders, state

view = state.current()
ev = loaders.evalset(view)
components.stop_if_empty(ev)
report = loaders.cached_table(view, story_report, ev, run_id=view.run,
                              split=None if view.split == "all" else view.split,
                              policy=view.policy)
story = build_story(report)
steps = story.steps
keys = [s.key for s in steps]
current = state.get_param("story_step", keys[0])
i = keys.index(current) if current in keys else 0
step = steps[i]
state.set_param("story_step", step.key)  # every step has its own URL, the first one too


def _go(key: str) -> None:
    state.set_param("story_step", key)


st.title(f"Story of run {components.esc(view.run)}")
st.caption(f"Step {i + 1} of {len(steps)}: {step.title} · ← / → keys move between steps")
st.html(f"<div class='tl-story-headline' data-step='{html.escape(step.key)}' "
        "style='font-size:2.1rem;line-height:1.25;font-weight:600;margin:0.4rem 0 0.6rem'>"
        f"{html.escape(step.headline)}</div>")
components.record("heading", f"{i + 1}. {step.title}")
components.record("text", step.headline)
if step.weak:
    st.warning("A weak finding: its interval includes no effect.", icon=":material/info:")
if step.detail:
    st.text(step.detail)
    components.record("text", step.detail)
fig = section_figure(report, step.figure)
if fig is not None:
    components.figure(fig, f"story_{step.key}", key=f"story_fig_{step.key}")

prev, mid, nxt = st.columns([1, 4, 1])
prev.button("◀ Previous", key="story_prev", shortcut="Left", disabled=i == 0,
            on_click=_go, args=(keys[max(i - 1, 0)],), width="stretch")
nxt.button("Next ▶", key="story_next", shortcut="Right", disabled=i == len(steps) - 1,
           on_click=_go, args=(keys[min(i + 1, len(steps) - 1)],), width="stretch")
mid.html("<div style='text-align:center;font-size:1.4rem;letter-spacing:0.4rem'>"
         + "".join("●" if j == i else "○" for j in range(len(steps))) + "</div>")
if story.skipped:
    with st.expander("Steps not told for this run"):
        st.text("\n".join(f"{s.title}: {s.reason}" for s in story.skipped))
