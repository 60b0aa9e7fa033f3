"""Issue 17: every text from a URL, a file or a user is shown as text on every page.

The app is pointed at a demo dataset whose class, site and run names are Markdown links,
images and HTML, and opened with hostile URL params; no element that renders Markdown may then
carry live link, image or HTML syntax (code spans, which show their content literally, aside).
"""
from __future__ import annotations

import importlib

import json
import os
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import APP, TIMEOUT

EVIL_CLASS = ("zebra [phish](https://evil.example/p) ![i](https://evil.example/i.png) "
              "<img src=https://evil.example/x.png>")
EVIL_SITE = "<a href='https://evil.example'>B04</a>"
EVIL_RUN = "run [x](https:evil.example) <img src=x>"
EVIL_CURATOR = "[Session expired - log in again](https://evil.example/phish)"
LIVE = ("](", "![", "<img", "<a ", "<script", "javascript:", "://", "www.")  # GFM autolinks too
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)


@pytest.fixture(scope="module")
def hostile_env(tmp_path_factory):
    from data.demo import make_demo
    from tests.synth import make_synthetic_run

    root = tmp_path_factory.mktemp("hostile")
    demo = make_demo(root / "demo", n_images=150, seed=3)
    for path in demo.json_paths:
        doc = json.loads(Path(path).read_text())
        for cat in doc["categories"]:
            if cat["name"] == "zebra":
                cat["name"] = EVIL_CLASS
        for img in doc["images"]:
            if img.get("location") == "B04" or img.get("location", "").endswith("04"):
                img["location"] = EVIL_SITE
        Path(path).write_text(json.dumps(doc))
    runs = root / "runs"
    make_synthetic_run(demo, runs / EVIL_RUN, seed=0)
    make_synthetic_run(demo, runs / "plain", seed=1, accuracy=0.6)
    return {"TRAPLENS_DATASET": os.pathsep.join(map(str, demo.json_paths)),
            "TRAPLENS_IMAGES": str(demo.images_root), "TRAPLENS_RUNS": str(runs)}


def _rendered(at) -> list[str]:
    """The Markdown source of every element that renders Markdown (bodies and labels)."""
    out = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning",
                 "success", "error", "toast"):
        out += [str(e.value) for e in getattr(at, kind)]
    for kind in ("metric", "tabs", "expander", "button", "selectbox", "multiselect",
                 "text_input", "segmented_control"):
        for e in at.get(kind):
            for attr in ("label", "help"):
                out.append(str(getattr(e, attr, "") or getattr(e.proto, attr, "") or ""))
    return out


def _assert_inert(at, where: str) -> None:
    assert not at.exception, [str(e.value) for e in at.exception]
    for text in _rendered(at):
        plain = CODE_SPAN.sub("", text)
        bad = [t for t in LIVE if t in plain]
        assert not bad, f"{where}: live {bad} in {text!r}"


#: Page-specific hostile URL values; every page of dashboard.app.PAGES is walked (a new page
#: is walked without being listed here).
QUERIES = {"per_class": {"pc_class": EVIL_CLASS},
           "confusion": {"cm_cell": f"{EVIL_CLASS}|{EVIL_CLASS}"},
           "compare": {"compare": "plain"},
           "relabel": {"relabel_curator": EVIL_CURATOR}}
PAGES = [(stem, QUERIES.get(stem, {})) for stem, _, _ in importlib.import_module(
    "dashboard.app").PAGES] + [
    ("relabel", {"relabel_curator": "ana\nroot"}),
    ("overview", {"run": "[x](https://evil.example)", "split": "<img src=x>",
                  "policy": "[p](https://evil.example)", "location": EVIL_SITE}),
]


@pytest.mark.parametrize("page, query", PAGES, ids=[f"{p}-{i}" for i, (p, _) in
                                                    enumerate(PAGES)])
def test_every_page_renders_hostile_names_as_text(hostile_env, monkeypatch, page, query):
    for key, value in hostile_env.items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update({"run": EVIL_RUN, **query})
    at.switch_page(f"app_pages/{page}.py")
    at.run()
    _assert_inert(at, page)
    shown = "\n".join(_rendered(at))
    if page == "relabel" and query["relabel_curator"] == EVIL_CURATOR:
        # the name is kept (printable, one line, short) and shown as its characters
        from dashboard.components import esc

        progress = "\n".join(str(p.proto.text) for p in at.get("progress"))
        assert f"curating as **{esc(EVIL_CURATOR)}**" in progress
        assert not any(t in progress for t in LIVE)
    if page == "relabel" and "\n" in query["relabel_curator"]:
        assert "printable text on one line" in shown  # refused, asked for a name instead
        assert at.text_input(key="relabel_name") is not None


def test_the_walk_sees_the_hostile_names(hostile_env, monkeypatch):
    """Guard: the pages above really show the hostile run and class (else the walk proves
    nothing)."""
    from dashboard.components import esc

    for key, value in hostile_env.items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update({"run": EVIL_RUN, "pc_class": EVIL_CLASS})
    at.switch_page("app_pages/per_class.py")
    at.run()
    assert not at.exception and not at.error
    assert any(esc(EVIL_CLASS) in str(s.value) for s in at.subheader)
    at.switch_page("app_pages/overview.py")
    at.run()
    assert at.title[0].value == f"Overview: {esc(EVIL_RUN)}"
