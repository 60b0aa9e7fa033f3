"""data.curation.store: the append-only decisions store, its CLIs and concurrent writers."""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from data.cct import load_dataset
from data.curation.store import (ACTIONS, DecisionError, DecisionStore, parse_labels,
                                 register_cli, resolve_item)

CLASSES = ["empty", "human", "zebra", "wildebeest", "elephant", "mongoose"]
CAT_IDS = {"empty": 0, "human": 1, "zebra": 5, "wildebeest": 12, "elephant": 18, "mongoose": 32}
NAN = float("nan")


def write_cct(path: Path, *, n_captures: int = 6, frames: int = 3, seed: int = 0,
              season: str = "S1", site: str = "A01") -> Path:
    """A small COCO Camera Traps file in the published Snapshot Serengeti layout: one
    annotation per (capture, species) copied onto every frame, bare NaN counts for empties.
    Capture k's labels: k % 5 == 0 -> empty, k % 5 == 1 -> zebra + wildebeest, else one
    species drawn with ``seed``."""
    rng = random.Random(seed)
    images, annotations = [], []
    species = ["zebra", "wildebeest", "elephant", "mongoose"]
    for k in range(n_captures):
        seq_id = f"SER_{season}#{site}#1#{k}"
        labels = (["empty"] if k % 5 == 0 else ["zebra", "wildebeest"] if k % 5 == 1
                  else [rng.choice(species)])
        for f in range(1, frames + 1):
            image_id = f"{season}/{site}/{site}_R1/{season}_{site}_R1_IMAG{k:04d}{f}"
            stamp = f"2010-07-{1 + k % 28:02d} {6 + k % 12:02d}:00:0{f}"
            images.append({"id": image_id, "file_name": image_id + ".JPG", "frame_num": f,
                           "seq_id": seq_id, "width": 2048, "height": 1536, "corrupt": False,
                           "location": site, "seq_num_frames": frames, "datetime": stamp})
            for name in labels:
                empty = name == "empty"
                annotations.append({
                    "sequence_level_annotation": True,
                    "id": f"ann-{season}-{site}-{k}-{f}-{name}", "image_id": image_id,
                    "category_id": CAT_IDS[name], "seq_id": seq_id, "season": season,
                    "datetime": stamp, "subject_id": f"ASG{k:07d}",
                    "count": NAN if empty else "1", "standing": NAN if empty else 0.5,
                    "moving": NAN if empty else 0.5, "location": site})
    doc = {"info": {"version": "2.0", "description": f"synthetic {season}"},
           "categories": [{"id": CAT_IDS[c], "name": c} for c in CLASSES],
           "images": images, "annotations": annotations}
    path.write_text(json.dumps(doc, allow_nan=True))
    return path


def image_id(k: int, f: int, *, season: str = "S1", site: str = "A01") -> str:
    return f"{season}/{site}/{site}_R1/{season}_{site}_R1_IMAG{k:04d}{f}"


def seq_id(k: int, *, season: str = "S1", site: str = "A01") -> str:
    return f"SER_{season}#{site}#1#{k}"


@pytest.fixture
def small(tmp_path):
    return load_dataset([write_cct(tmp_path / "small.json")], cache=False)


@pytest.fixture
def store(tmp_path):
    return DecisionStore(tmp_path / "db" / "curation.sqlite")


def corrections_dict(store: DecisionStore, dataset) -> dict[str, tuple[str, ...]]:
    corr = store.corrections(dataset)
    assert list(corr.columns) == ["image_id", "labels"]
    return dict(zip(corr["image_id"], corr["labels"]))


# -- schema and recording -----------------------------------------------------------------
def test_schema_is_wal_with_the_documented_columns(store):
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cols = [r[1] for r in conn.execute("PRAGMA table_info(decisions)")]
    assert cols == ["id", "ts", "curator", "scope", "item_id", "action", "labels_before",
                    "labels_after", "reason", "run_id", "undoes"]
    views = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='view'")}
    assert "latest_decisions" in views
    DecisionStore(store.path)  # reopening an existing store is fine


def test_record_appends_one_row_with_labels_before_and_after(store, small):
    row = store.record(small, curator="ann", item_id=image_id(1, 2), action="set",
                       labels=["zebra"], reason="no wildebeest", run_id="run-a")
    df = store.decisions()
    assert list(df["id"]) == [row]
    got = df.iloc[0]
    assert (got.curator, got.scope, got.item_id, got.action) == ("ann", "image",
                                                                 image_id(1, 2), "set")
    assert got.labels_before == ("zebra", "wildebeest")
    assert got.labels_after == ("zebra",)
    assert (got.reason, got.run_id) == ("no wildebeest", "run-a")
    assert str(got.ts.tz) == "UTC"
    assert pd.isna(got.undoes)


@pytest.mark.parametrize("action, labels, expected", [
    ("set", ["elephant", "zebra"], ("elephant", "zebra")),
    ("set", "mongoose", ("mongoose",)),
    ("accept", ["elephant"], ("elephant",)),
    ("accept", None, ("zebra", "wildebeest")),      # confirms the current labels
    ("empty", None, ("empty",)),
    ("set", ["empty"], ("empty",)),
])
def test_label_actions_set_corrections(store, small, action, labels, expected):
    store.record(small, curator="ann", item_id=image_id(1, 1), action=action, labels=labels)
    assert corrections_dict(store, small) == {image_id(1, 1): expected}
    assert store.decisions().iloc[0].labels_after == expected


@pytest.mark.parametrize("action", ["unsure", "skip"])
def test_unsure_and_skip_keep_labels_but_count_as_decided(store, small, action):
    store.record(small, curator="ann", item_id=image_id(2, 1), action="set", labels=["human"])
    store.record(small, curator="ann", item_id=image_id(2, 1), action=action)
    assert corrections_dict(store, small) == {image_id(2, 1): ("human",)}
    latest = store.latest()
    assert list(latest["action"]) == [action]
    assert latest.iloc[0].labels_before == latest.iloc[0].labels_after == ("human",)
    store.record(small, curator="ann", item_id=image_id(3, 1), action=action)
    assert corrections_dict(store, small) == {image_id(2, 1): ("human",)}
    assert store.decided_ids() == {image_id(2, 1), image_id(3, 1)}


def test_accept_without_labels_needs_one_label_set_to_confirm(store, small):
    store.record(small, curator="ann", item_id=image_id(2, 3), action="empty")
    with pytest.raises(DecisionError, match=r"frames of capture 'SER_S1#A01#1#2' carry "
                                            r"different labels"):
        store.record(small, curator="ann", item_id=seq_id(2), scope="capture",
                     action="accept")
    store.record(small, curator="ann", item_id=seq_id(3), scope="capture", action="accept")
    assert len(store.decisions()) == 2
    assert set(store.corrections(small)["image_id"]) == {image_id(2, 3)} | {
        image_id(3, f) for f in (1, 2, 3)}


def test_capture_decisions_expand_and_replay_in_order(store, small):
    frames = [image_id(1, f) for f in (1, 2, 3)]
    store.record(small, curator="ann", item_id=seq_id(1), scope="capture", action="set",
                 labels=["zebra"])
    assert corrections_dict(store, small) == {i: ("zebra",) for i in frames}
    # a later frame-level decision overrides the capture-level one on that frame only
    store.record(small, curator="bob", item_id=frames[2], action="empty")
    assert corrections_dict(store, small) == {frames[0]: ("zebra",), frames[1]: ("zebra",),
                                              frames[2]: ("empty",)}
    # the capture's labels_before is the union of its frames' current labels, frame order
    store.record(small, curator="ann", item_id=seq_id(1), scope="capture", action="set",
                 labels=["elephant"])
    last = store.decisions().iloc[-1]
    assert last.labels_before == ("zebra", "empty")
    assert corrections_dict(store, small) == {i: ("elephant",) for i in frames}
    assert store.decided_ids() == {seq_id(1), frames[2]}


def test_corrections_keep_dataset_image_order_and_ignore_foreign_items(store, small, tmp_path):
    store.record(small, curator="ann", item_id=image_id(4, 3), action="set", labels=["human"])
    store.record(small, curator="ann", item_id=image_id(0, 1), action="set", labels=["human"])
    assert list(store.corrections(small)["image_id"]) == [image_id(0, 1), image_id(4, 3)]
    other = load_dataset([write_cct(tmp_path / "other.json", site="B02")], cache=False)
    store.record(other, curator="ann", item_id=image_id(0, 1, site="B02"), action="empty")
    assert list(store.corrections(small)["image_id"]) == [image_id(0, 1), image_id(4, 3)]
    assert list(store.corrections(other)["image_id"]) == [image_id(0, 1, site="B02")]


# -- undo -----------------------------------------------------------------------------------
def test_undo_walks_back_this_curators_history(store, small):
    a = store.record(small, curator="ann", item_id=image_id(1, 1), action="set",
                     labels=["zebra"])
    b = store.record(small, curator="bob", item_id=image_id(2, 1), action="set",
                     labels=["human"])
    c = store.record(small, curator="ann", item_id=image_id(1, 1), action="set",
                     labels=["elephant"])
    assert store.undo(curator="ann", dataset=small) == c
    assert corrections_dict(store, small) == {image_id(1, 1): ("zebra",),
                                              image_id(2, 1): ("human",)}
    undo_row = store.decisions().iloc[-1]
    assert (undo_row.action, undo_row.undoes, undo_row.item_id) == ("undo", c, image_id(1, 1))
    assert undo_row.labels_before == ("elephant",) and undo_row.labels_after == ("zebra",)
    assert store.undo(curator="ann") == a
    assert corrections_dict(store, small) == {image_id(2, 1): ("human",)}
    assert store.undo(curator="ann") is None
    assert list(store.latest()["id"]) == [b]
    assert store.decided_ids() == {image_id(2, 1)}
    assert len(store.decisions()) == 5  # undo appends, never deletes


def test_undo_of_an_earlier_decision_keeps_a_later_one_by_someone_else(store, small):
    store.record(small, curator="ann", item_id=seq_id(3), scope="capture", action="empty")
    store.record(small, curator="bob", item_id=image_id(3, 2), action="set", labels=["zebra"])
    store.undo(curator="ann", dataset=small)
    assert corrections_dict(store, small) == {image_id(3, 2): ("zebra",)}


def test_record_undo_reverts_the_latest_on_that_item(store, small):
    first = store.record(small, curator="ann", item_id=image_id(1, 1), action="empty")
    store.record(small, curator="ann", item_id=image_id(2, 1), action="empty")
    store.record(small, curator="ann", item_id=image_id(1, 1), action="undo")
    assert store.decisions().iloc[-1].undoes == first
    assert corrections_dict(store, small) == {image_id(2, 1): ("empty",)}
    with pytest.raises(DecisionError, match="nothing to undo.*ann"):
        store.record(small, curator="ann", item_id=image_id(1, 1), action="undo")


# -- the append-only guard ----------------------------------------------------------------
@pytest.mark.parametrize("sql", ["UPDATE decisions SET labels_after = '[]'",
                                 "DELETE FROM decisions",
                                 "UPDATE decisions SET curator = 'eve' WHERE id = 1"])
def test_rows_cannot_be_updated_or_deleted(store, small, sql):
    store.record(small, curator="ann", item_id=image_id(1, 1), action="empty")
    conn = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute(sql)
    conn.close()
    assert store.decisions().iloc[0].labels_after == ("empty",)


# -- bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(item_id="S1/nope"), r"unknown image id 'S1/nope'"),
    (dict(item_id="SER_S1#A01#1#99", scope="capture"), r"unknown capture.*SER_S1#A01#1#99"),
    (dict(item_id=image_id(1, 1), scope="frame"), r"unknown scope 'frame'"),
    (dict(labels=["zebra", "unicorn"]), r"unknown class 'unicorn'"),
    (dict(labels=["empty", "zebra"]), r"'empty' cannot be combined.*empty,zebra"),
    (dict(labels=None), r"'set' needs labels"),
    (dict(action="unsure", labels=["zebra"]), r"'unsure' takes no labels"),
    (dict(action="empty", labels=["zebra"]), r"'empty' takes no labels"),
    (dict(action="delete"), r"unknown action 'delete'"),
    (dict(curator="  "), r"curator must be a non-empty name"),
    (dict(run_id=""), r"run_id must be"),
])
def test_bad_decisions_are_refused_and_nothing_is_written(store, small, kwargs, match):
    args = dict(curator="ann", item_id=image_id(1, 1), action="set", labels=["zebra"])
    args.update(kwargs)
    with pytest.raises(DecisionError, match=match):
        store.record(small, **args)
    assert len(store.decisions()) == 0


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    bad = tmp_path / "notes.sqlite"
    bad.write_text("not a database at all " * 100)
    with pytest.raises(DecisionError, match=r"notes.sqlite: not a usable decisions database"):
        DecisionStore(bad)


def test_a_foreign_decisions_table_is_refused(tmp_path):
    path = tmp_path / "foreign.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE decisions (id INTEGER, what TEXT)").close()
    with pytest.raises(DecisionError, match=r"foreign.sqlite: table 'decisions' has columns"):
        DecisionStore(path)


def test_parse_labels():
    assert parse_labels(" zebra, wildebeest ,zebra,") == ("zebra", "wildebeest")
    assert parse_labels("") is None and parse_labels(None) is None
    assert set(ACTIONS) == {"accept", "set", "empty", "unsure", "skip", "undo"}


# -- many at once -------------------------------------------------------------------------
def test_record_many_is_all_or_nothing(store, small):
    rows = [{"image_id": image_id(1, 1), "labels": "zebra", "reason": "r1"},
            {"image_id": image_id(2, 1), "labels": "empty"},
            {"image_id": image_id(3, 1), "labels": "zebra,unicorn"}]
    with pytest.raises(DecisionError, match=r"batch.csv row 4: unknown class 'unicorn'"):
        store.record_many(small, rows, curator="ann", source="batch.csv", first_row=2)
    assert len(store.decisions()) == 0
    assert store.record_many(small, rows[:2], curator="ann") == 2
    df = store.decisions()
    assert list(df["action"]) == ["set", "empty"] and list(df["reason"]) == ["r1", ""]


def test_record_many_chains_labels_before_within_the_batch(store, small):
    rows = [{"item_id": seq_id(2), "scope": "capture", "labels": "zebra"},
            {"item_id": image_id(2, 1), "labels": "elephant"},
            {"item_id": image_id(2, 1), "action": "unsure"}]
    store.record_many(small, rows, curator="ann")
    df = store.decisions()
    assert df.iloc[1].labels_before == ("zebra",)
    assert df.iloc[2].labels_before == df.iloc[2].labels_after == ("elephant",)


def _writer(path: str, dataset, curator: str, items: list[str], seed: int, n: int,
            start) -> None:
    rng = random.Random(seed)
    store = DecisionStore(path)
    start.wait()
    for _ in range(n):
        store.record(dataset, curator=curator, item_id=rng.choice(items), action="set",
                     labels=[rng.choice(["zebra", "elephant", "human", "mongoose"])])


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    dataset = load_dataset([write_cct(tmp_path / "c.json", n_captures=40)], cache=False)
    path = str(tmp_path / "shared.sqlite")
    DecisionStore(path)
    ids = list(dataset.images["image_id"])
    shared, own_a, own_b = ids[:20], ids[20:70], ids[70:120]
    ctx = mp.get_context("fork")  # the children share the loaded dataset
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(path, dataset, "ann", shared + own_a, 1, 500,
                                               start)),
             ctx.Process(target=_writer, args=(path, dataset, "bob", shared + own_b, 2, 500,
                                               start))]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    store = DecisionStore(path)
    df = store.decisions()
    assert len(df) == 1000 and df["id"].is_unique
    assert (df["curator"].value_counts() == 500).all()
    assert set(df.loc[df.curator == "ann", "item_id"]) <= set(shared + own_a)
    # every row's labels_before is the previous row's labels_after on that item (or the
    # dataset's labels): each read-then-append was one transaction
    original = dataset.label_sets()
    for item, rows in df.groupby("item_id", sort=False):
        before = list(rows["labels_before"])
        assert before[0] == tuple(original[item])
        assert before[1:] == list(rows["labels_after"])[:-1]
    # the latest view: the highest id per item, and the corrections follow it
    expected = df.sort_values("id").groupby("item_id").tail(1).set_index("item_id")
    latest = store.latest().set_index("item_id")
    assert sorted(latest.index) == sorted(expected.index)
    assert (latest["id"] == expected.loc[latest.index, "id"]).all()
    corr = corrections_dict(store, dataset)
    assert corr == dict(zip(expected.index, expected["labels_after"]))


# -- CLI ------------------------------------------------------------------------------------
def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="python -m data")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_decide_image_and_capture(tmp_path, capsys):
    data = write_cct(tmp_path / "d.json")
    db = tmp_path / "cli.sqlite"
    assert run_cli("decide", "--dataset", str(data), "--db", str(db), "--image",
                   image_id(1, 3), "--labels", "zebra", "--curator", "ann",
                   "--reason", "no wildebeest in frame 3") == 0
    # with --capture an image id means its capture; a seq_id is accepted as well
    assert run_cli("decide", "--dataset", str(data), "--db", str(db), "--image",
                   image_id(2, 2), "--capture", "--labels", "empty", "--curator", "bob") == 0
    assert run_cli("decide", "--dataset", str(data), "--db", str(db), "--image", seq_id(3),
                   "--capture", "--labels", "elephant,zebra", "--curator", "bob") == 0
    df = DecisionStore(db).decisions()
    assert list(zip(df.scope, df.item_id, df.action)) == [
        ("image", image_id(1, 3), "set"), ("capture", seq_id(2), "empty"),
        ("capture", seq_id(3), "set")]
    assert df.iloc[2].labels_after == ("elephant", "zebra")
    assert "decision 3" in capsys.readouterr().out


@pytest.mark.parametrize("argv, match", [
    (["--image", "S1/missing", "--labels", "zebra"], r"unknown image id 'S1/missing'"),
    (["--image", "nothing", "--capture", "--labels", "zebra"], r"neither an image id nor"),
    (["--image", image_id(1, 1), "--labels", "zebra,dragon"], r"unknown class 'dragon'"),
])
def test_cli_decide_refuses_bad_input(tmp_path, argv, match):
    data = write_cct(tmp_path / "d.json")
    db = tmp_path / "cli.sqlite"
    with pytest.raises(DecisionError, match=match):
        run_cli("decide", "--dataset", str(data), "--db", str(db), "--curator", "ann", *argv)
    assert not db.exists() or len(DecisionStore(db)) == 0


def test_cli_import_decisions(tmp_path):
    data = write_cct(tmp_path / "d.json")
    db = tmp_path / "cli.sqlite"
    good = tmp_path / "good.csv"
    good.write_text("image_id,labels,reason\n"
                    f"{image_id(1, 1)},\"zebra,elephant\",two species\n"
                    f"{image_id(1, 2)},empty,\n")
    assert run_cli("import-decisions", "--dataset", str(data), "--db", str(db), "--csv",
                   str(good), "--curator", "ann") == 0
    store = DecisionStore(db)
    assert corrections_dict(store, load_dataset([data], cache=False)) == {
        image_id(1, 1): ("zebra", "elephant"), image_id(1, 2): ("empty",)}
    assert list(store.decisions()["reason"]) == ["two species", ""]


@pytest.mark.parametrize("body, match", [
    ("image_id,labels\nS1/ghost,zebra\n", r"bad.csv row 2: unknown image id 'S1/ghost'"),
    (f"image_id,labels\n{image_id(1, 1)},zebra\n{image_id(1, 2)},griffin\n",
     r"bad.csv row 3: unknown class 'griffin'"),
    (f"image_id,labels\n{image_id(1, 1)},\n", r"bad.csv row 2: empty labels"),
    ("image,labels\nx,zebra\n", r"bad.csv: missing column\(s\) \['image_id'\]"),
])
def test_cli_import_refuses_bad_rows_and_writes_nothing(tmp_path, body, match):
    data = write_cct(tmp_path / "d.json")
    db = tmp_path / "cli.sqlite"
    DecisionStore(db)
    bad = tmp_path / "bad.csv"
    bad.write_text(body)
    with pytest.raises(DecisionError, match=match):
        run_cli("import-decisions", "--dataset", str(data), "--db", str(db), "--csv", str(bad),
                "--curator", "ann")
    assert len(DecisionStore(db)) == 0


# -- the real fixture -----------------------------------------------------------------------
MONGOOSE = "SER_S1#D04#6#43"


def test_real_slice_sequence_label_fix(serengeti_slice, tmp_path):
    """Capture 43: the mongoose is in frame 1 only; frames 2 and 3 inherit its label."""
    dataset = load_dataset([serengeti_slice], cache=False)
    frames = list(dataset.images.loc[dataset.images["seq_id"] == MONGOOSE]
                  .sort_values("frame_num")["image_id"])
    assert resolve_item(dataset, frames[1], capture=True) == ("capture", MONGOOSE)
    store = DecisionStore(tmp_path / "real.sqlite")
    for frame in frames[1:]:
        store.record(dataset, curator="ann", item_id=frame, action="empty",
                     reason="sequence-inherited label")
    assert corrections_dict(store, dataset) == {f: ("empty",) for f in frames[1:]}
    assert list(store.decisions()["labels_before"]) == [("mongoose",)] * 2


def test_python_m_data_decide_fails_in_one_line(tmp_path):
    import subprocess
    import sys

    data = write_cct(tmp_path / "d.json")
    db = tmp_path / "cli.sqlite"
    root = Path(__file__).resolve().parents[2]
    base = [sys.executable, "-m", "data", "decide", "--dataset", str(data), "--db", str(db),
            "--curator", "ann", "--image", image_id(1, 1)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    bad = subprocess.run(base + ["--labels", "zebra,dragon"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "unknown class 'dragon'" in bad.stderr
    good = subprocess.run(base + ["--labels", "zebra"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert good.returncode == 0, good.stderr
    assert len(DecisionStore(db)) == 1


def test_index_look_ups_match_the_dataset_tables(tmp_path, serengeti_slice):
    """The vectorised index answers as plain dicts built from the tables would."""
    from data.curation import store as curation
    from data.cct import load_dataset

    paths = [write_cct(tmp_path / "S1.json", n_captures=7, seed=1),
             write_cct(tmp_path / "S2.json", n_captures=5, season="S2", site="B02", seed=2)]
    for dataset in (load_dataset(paths, cache=False),
                    load_dataset([serengeti_slice], cache=False)):
        index = curation._index(dataset)
        assert curation._index(dataset) is index  # built once per dataset object
        images = dataset.images
        sets = dataset.label_sets()
        for image, seq in zip(images["image_id"], images["seq_id"].astype(str)):
            assert image in index.image_ids and index.seq_of[image] == seq
            assert index.original[image] == sets[image]
        frames = {s: tuple(g.sort_values("frame_num", kind="stable")["image_id"])
                  for s, g in images.groupby(images["seq_id"].astype(str))}
        assert dict(index.frames) == frames
        for missing in ("no-such-id", ["unhashable"]):
            assert missing not in index.seq_of and missing not in index.frames
            assert index.original.get(missing, ()) == ()
        with pytest.raises(KeyError):
            index.frames["no-such-seq"]
