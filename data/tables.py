"""Tidy tables from COCO Camera Traps records: column batches while reading, frames at the end.

Reading a published file yields batches of plain dicts; each batch is turned at once into Arrow
columns (strings, dictionary-encoded categoricals, small integers), so a 7 M-image file never
holds more than one batch of Python objects. ``build_tables`` then joins the batches into the
pandas frames of :class:`data.cct.Dataset` and lists what it had to drop or repair as problems.

Sentinels of the published files: ``width``/``height`` -1, ``seq_num_frames`` -1,
``location``/``datetime`` "unknown" all become missing values. An image without ``seq_id`` is
its own one-frame capture (plain COCO-CT files have no sequences); without ``frame_num`` it is
frame 1.
"""
from __future__ import annotations

import logging
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DAY_HOURS = (6, 17)  # day = hour 6..17 inclusive, local camera time
PROBLEM_COLUMNS = ["kind", "id", "detail"]
_STR = pa.large_string()


class TableError(ValueError):
    """A field value that cannot be read (message names the file, item and value)."""


# --- per-batch columns ------------------------------------------------------------------

def _strings(vals: list) -> pa.Array:
    try:
        return pa.array(vals, type=_STR)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in vals], type=_STR)


def _ints(vals: list, field: str, where: str, offset: int, typ: pa.DataType) -> pa.Array:
    try:
        return pa.array(vals, type=typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        pass
    out: list[int | None] = []
    for k, v in enumerate(vals):
        if v is None or (isinstance(v, str) and v.strip() in ("", UNKNOWN)):
            out.append(None)
            continue
        try:
            f = float(v)
            if not f.is_integer():
                raise ValueError
            out.append(int(f))
        except (TypeError, ValueError, OverflowError):
            raise TableError(f"{where}: {field} of item {offset + k} is {v!r}, "
                             "not an integer") from None
    try:
        return pa.array(out, type=typ)
    except (pa.ArrowInvalid, OverflowError):
        limit = 1 << (typ.bit_width - 1)
        k = next(k for k, v in enumerate(out) if v is not None and not -limit <= v < limit)
        raise TableError(f"{where}: {field} of item {offset + k} is {vals[k]!r}, out of range "
                         f"for {typ}") from None


def _bools(vals: list) -> pa.Array:
    try:
        arr = pa.array(vals, type=pa.bool_())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        arr = pa.array([bool(v) and str(v).lower() not in ("false", "0") for v in vals])
    return pc.fill_null(arr, False)


def _sentinel_null(arr: pa.Array, sentinel: Any) -> pa.Array:
    return pc.if_else(pc.equal(arr, sentinel), pa.scalar(None, arr.type), arr)


def _datetimes(raw: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Parsed timestamps and the indices of strings that could not be parsed (not "unknown")."""
    parsed = pc.strptime(raw, format=DATETIME_FORMAT, unit="s", error_is_null=True)
    failed = pc.and_(pc.is_null(parsed), pc.is_valid(raw))
    failed = pc.and_(failed, pc.not_equal(pc.utf8_lower(pc.utf8_trim_whitespace(raw)), UNKNOWN))
    idx = np.flatnonzero(failed.to_numpy(zero_copy_only=False))
    if idx.size:  # other spellings: ISO 8601 with "T", fractions, zones dropped
        retry = pd.to_datetime(pd.Series(raw.take(pa.array(idx)).to_pylist()), format="ISO8601",
                               errors="coerce", utc=False)
        if getattr(retry.dt, "tz", None) is not None:
            retry = retry.dt.tz_localize(None)
        ok = retry.notna().to_numpy()
        if ok.any():
            vals = parsed.to_pylist()
            for i, ts in zip(idx[ok], retry[ok]):
                vals[i] = ts.to_pydatetime()
            parsed = pa.array(vals, type=pa.timestamp("s"))
        idx = idx[~ok]
    return parsed, idx


def _columns(items: list, fields: tuple[str, ...], key: str, where: str, offset: int
             ) -> dict[str, list]:
    """One list per field: from typed records (attributes, one C-level pass per field) or
    from plain dicts (missing fields as None)."""
    if items and not isinstance(items[0], dict) and hasattr(items[0], "__struct_fields__"):
        try:  # a batch decodes either all typed or all plain: no per-item check needed
            return {f: list(map(operator.attrgetter(f), items)) for f in fields}
        except AttributeError:  # a mixed list after all: the per-item check below words it
            pass
    k = next((k for k, d in enumerate(items) if not isinstance(d, dict)), None)
    if k is not None:
        raise TableError(f"{where}: {key}[{offset + k}] is not an object: {items[k]!r:.80}")
    return {f: [d.get(f) for d in items] for f in fields}


class NullInText(Exception):
    """A kept text of a batch read with the fast NaN rewrite contains "null" (it may have been
    "NaN" inside a string): the reader decodes that batch again with the exact rewrite."""


def _texts(get: dict[str, list], fields: tuple[str, ...], null_check: bool
           ) -> dict[str, pa.Array]:
    out = {f: _strings(get[f]) for f in fields}
    if null_check and any(pc.any(pc.match_substring(a, "null")).as_py() for a in out.values()):
        raise NullInText
    return out


IMAGE_FIELDS = ("id", "file_name", "seq_id", "frame_num", "seq_num_frames", "location",
                "datetime", "width", "height", "corrupt", "season")
ANNOTATION_FIELDS = ("id", "image_id", "category_id", "season", "count",
                     "sequence_level_annotation")


def image_batch(items: list, *, where: str, offset: int, source: int, null_check: bool = False
                ) -> tuple[pa.RecordBatch, list[tuple[str, str, str]]]:
    """Arrow columns of one batch of ``images[]`` records (typed records or plain dicts), and
    the problems found in it. With ``null_check``, raise :class:`NullInText` when a text
    field contains "null" (see ``data.cct._denan_fast``)."""
    problems: list[tuple[str, str, str]] = []
    get = _columns(items, IMAGE_FIELDS, "images", where, offset)
    text = _texts(get, ("id", "file_name", "seq_id", "location", "datetime", "season"),
                  null_check)
    ids = text["id"]
    for k in np.flatnonzero(pc.is_null(ids).to_numpy(zero_copy_only=False)):
        problems.append(("missing_id", f"images[{offset + k}]", f"{where}: image without an id"))
    files = text["file_name"]
    for k in np.flatnonzero(pc.and_(pc.is_null(files), pc.is_valid(ids))
                            .to_numpy(zero_copy_only=False)):
        problems.append(("missing_file_name", ids[int(k)].as_py(), f"{where}: no file_name"))
    seq = pc.coalesce(text["seq_id"], ids)
    frame = pc.coalesce(_ints(get["frame_num"], "frame_num", where, offset, pa.int32()),
                        pa.scalar(1, pa.int32()))
    nframes = _sentinel_null(_ints(get["seq_num_frames"], "seq_num_frames", where, offset,
                                   pa.int32()), -1)
    width = _ints(get["width"], "width", where, offset, pa.int32())
    height = _ints(get["height"], "height", where, offset, pa.int32())
    width = pc.if_else(pc.less(width, 0), pa.scalar(None, pa.int32()), width)
    height = pc.if_else(pc.less(height, 0), pa.scalar(None, pa.int32()), height)
    location = text["location"]
    location = pc.if_else(pc.equal(pc.utf8_lower(location), UNKNOWN), pa.scalar(None, _STR),
                          location)
    stamps, bad = _datetimes(text["datetime"])
    for k in bad:
        problems.append(("bad_datetime", ids[int(k)].as_py(),
                         f"{where}: datetime {get['datetime'][k]!r} is not a date and time"))
    batch = pa.RecordBatch.from_pydict({
        "image_id": ids, "file_name": files,
        "seq_id": seq, "frame_num": frame, "seq_num_frames": nframes,
        "location": location.dictionary_encode(),
        "season": text["season"].dictionary_encode(),
        "datetime": stamps, "width": width, "height": height,
        "corrupt": _bools(get["corrupt"]),
        "source": pa.array(np.full(len(items), source, dtype=np.int16)),
    })
    return batch, problems


def annotation_batch(items: list, *, where: str, offset: int, source: int,
                     null_check: bool = False) -> pa.RecordBatch:
    """Arrow columns of one batch of ``annotations[]`` records (typed records or dicts);
    ``null_check`` as in :func:`image_batch`."""
    get = _columns(items, ANNOTATION_FIELDS, "annotations", where, offset)
    text = _texts(get, ("id", "image_id", "season", "count"), null_check)
    ann_id = text["id"]
    if ann_id.null_count:  # annotations without an id are named by their position
        ann_id = pc.coalesce(ann_id, pa.array([f"annotations[{offset + k}]"
                                               for k in range(len(items))], type=_STR))
    return pa.RecordBatch.from_pydict({
        "annotation_id": ann_id,
        "image_id": text["image_id"],
        "category_id": _ints(get["category_id"], "category_id", where, offset, pa.int64()),
        "season": text["season"].dictionary_encode(),
        "count": text["count"].dictionary_encode(),
        "sequence_level": _bools(get["sequence_level_annotation"]),
        "source": pa.array(np.full(len(items), source, dtype=np.int16)),
    })


# --- frames -----------------------------------------------------------------------------

def concat(batches: Sequence[pa.RecordBatch], schema: pa.Schema) -> pa.Table:
    """One table (a chunk per batch, nothing copied) from batches whose dictionary columns
    (few values each) were encoded separately."""
    if not batches:
        return schema.empty_table()
    return pa.Table.from_batches(batches).unify_dictionaries()


def _categorical(col: pa.ChunkedArray | pa.Array) -> pd.Categorical:
    """Categories in first-seen order, only those used; missing values as -1 codes."""
    if isinstance(col, pa.ChunkedArray) and not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)  # one memo over all chunks: a shared dictionary
    if isinstance(col, pa.ChunkedArray):
        col = col.unify_dictionaries() if col.num_chunks > 1 else col
        col = col.combine_chunks() if col.num_chunks else pa.array([], _STR).dictionary_encode()
    if not pa.types.is_dictionary(col.type):
        col = col.dictionary_encode()
    cats = pd.Index(col.dictionary.to_pandas(), dtype="str")
    codes = pc.fill_null(col.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    used = np.bincount(codes[codes >= 0], minlength=len(cats)) > 0
    if used.all():  # every category used (a fresh encoding): no second pass over codes
        return pd.Categorical.from_codes(codes, categories=cats, validate=False)
    # drop unused categories (e.g. null-only batches, filtered rows), keep first-seen order
    return pd.Categorical.from_codes(codes, categories=cats,
                                     validate=False).remove_unused_categories()


def _str(col: pa.ChunkedArray) -> pd.Series:
    return pd.Series(col.to_pandas(), dtype="str")


def _nullable_int(col: pa.ChunkedArray, dtype: str) -> pd.arrays.IntegerArray:
    return pd.array(col.to_pandas(types_mapper={pa.int32(): pd.Int32Dtype(),
                                                pa.int64(): pd.Int64Dtype()}.get),
                    dtype=dtype)


def _problems(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=PROBLEM_COLUMNS, dtype="str")


def as_arrow(values: Any) -> pa.Array:
    """Strings (Series, Index, list, array) as one Arrow large_string array."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        arr = values.cast(_STR)
        return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if not isinstance(values, (pd.Series, pd.Index)):
        values = pd.Series(list(values), dtype="str")
    elif values.dtype != "str":
        values = values.astype("str")
    return pa.array(values, type=_STR, from_pandas=True)


def isin(values: Any, allowed: Any) -> np.ndarray:
    """Boolean mask: which ``values`` (strings) occur in ``allowed`` (an Arrow hash join;
    pandas' ``isin`` on Arrow strings goes through Python objects)."""
    hit = pc.is_in(as_arrow(values), value_set=as_arrow(allowed), skip_nulls=True)
    return hit.to_numpy(zero_copy_only=False).astype(bool)


def index_in(values: Any, lookup: Any) -> np.ndarray:
    """Position of each of ``values`` in ``lookup`` (strings, first occurrence), -1 if absent."""
    idx = pc.index_in(as_arrow(values), value_set=as_arrow(lookup), skip_nulls=True)
    return pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def season_from_seq_id(seq_ids: pd.Index) -> pd.Series:
    """``SER_S1#D04#6#43`` -> ``S1`` (the part before the first ``#``, after a ``XXX_`` prefix)."""
    found = pc.extract_regex(as_arrow(seq_ids), r"^(?:[A-Za-z]+_)?(?P<season>[^#]+)#")
    return pd.Series(pc.struct_field(found, [0]).to_pandas(), dtype="str")


def build_tables(images: pa.Table, annotations: pa.Table, categories: pd.DataFrame,
                 sources: Sequence[str]
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """images, labels, sequences and problems frames from the raw Arrow tables.

    Duplicate image ids keep their first row; annotations of unknown images or categories and
    repeated (image, category) pairs are dropped; each is listed in ``problems``.
    """
    problems: list[tuple[str, str, str]] = []
    images = images.filter(pc.is_valid(images["image_id"]))
    img = pd.DataFrame({"image_id": _str(images["image_id"]),
                        "file_name": _str(images["file_name"])})
    # pc.unique: several times faster than pc.count_distinct on millions of strings
    unique = len(pc.unique(images["image_id"])) == images.num_rows
    dup = np.zeros(len(img), dtype=bool) if unique else \
        img["image_id"].duplicated(keep="first").to_numpy()
    if dup.any():
        src = pd.Series(images["source"].to_numpy(), index=img["image_id"])
        first_src = src[~dup]
        for k in np.flatnonzero(dup):
            iid = img["image_id"].iat[k]
            problems.append(("duplicate_image_id", iid,
                             f"listed again in {sources[src.iat[k]]} (first in "
                             f"{sources[first_src[iid]]}); the first is kept"))
        images = images.filter(pa.array(~dup))
        img = img.loc[~dup].reset_index(drop=True)

    ann = annotations
    labels = pd.DataFrame({"image_id": _str(ann["image_id"]),
                           "category_id": ann["category_id"].to_numpy(zero_copy_only=False)})
    ann_ids = ann["annotation_id"]
    row = index_in(labels["image_id"], img["image_id"])  # the image's row, -1 if unknown
    known_img = row >= 0
    for k in np.flatnonzero(~known_img):
        problems.append(("unknown_image", ann_ids[int(k)].as_py(),
                         f"annotation points to image_id {labels['image_id'].iat[k]!r}, "
                         "which is not in images"))
    cat_ok = pd.Series(labels["category_id"]).isin(categories["category_id"]).to_numpy()
    null_cat = pc.is_null(ann["category_id"]).to_numpy(zero_copy_only=False)
    for k in np.flatnonzero(~cat_ok | null_cat):
        problems.append(("unknown_category", ann_ids[int(k)].as_py(),
                         f"annotation of image {labels['image_id'].iat[k]!r} has category_id "
                         f"{ann['category_id'][int(k)].as_py()!r}, not in categories"))
    ok = known_img & cat_ok & ~null_cat
    labels = labels.loc[ok].reset_index(drop=True)
    count = _categorical(ann["count"].filter(pa.array(ok)))
    seq_level = ann["sequence_level"].filter(pa.array(ok)).to_numpy(zero_copy_only=False)
    ann_season = _categorical(ann["season"].filter(pa.array(ok)))
    labels["count"] = count
    labels["sequence_level"] = seq_level.astype(bool)
    labels["_season"] = ann_season
    row = row[ok]
    cat_pos = pd.Index(categories["category_id"]).get_indexer(labels["category_id"])
    twice = pd.Series(row * len(categories) + cat_pos).duplicated(keep="first").to_numpy()
    names = dict(zip(categories["category_id"], categories["name"]))
    for k in np.flatnonzero(twice):
        problems.append(("duplicate_label", labels["image_id"].iat[k],
                         f"category {names[int(labels['category_id'].iat[k])]!r} annotated "
                         "more than once; counted once"))
    labels = labels.loc[~twice].reset_index(drop=True)
    row, cat_pos = row[~twice], cat_pos[~twice]
    labels["category_id"] = labels["category_id"].astype(np.int64)
    labels["class"] = pd.Categorical.from_codes(
        cat_pos, categories=pd.Index(list(categories["name"]), dtype="str"))
    labels["rank"] = pd.Series(row).groupby(row, sort=False).cumcount().to_numpy(np.int16)
    labels["_row"] = row

    img = _image_frame(images, img, labels)
    labels = labels[["image_id", "category_id", "class", "rank", "count", "sequence_level"]]
    return img, labels, sequences_frame(img), _problems(problems)


def _image_frame(images: pa.Table, img: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    img["seq_id"] = _categorical(images["seq_id"])
    img["frame_num"] = images["frame_num"].to_numpy().astype(np.int16)
    img["seq_num_frames"] = pd.array(_nullable_int(images["seq_num_frames"], "Int32"),
                                     dtype="Int16")
    img["location"] = _categorical(images["location"])
    # season: the image's own field, else its first annotation's, else parsed from seq_id
    season = pd.Series(_categorical(images["season"])).astype("str")
    first = labels.loc[labels["rank"] == 0, ["_row", "_season"]]
    from_ann = np.full(len(img), None, dtype=object)
    from_ann[first["_row"].to_numpy()] = first["_season"].astype("object").to_numpy()
    season = season.fillna(pd.Series(from_ann, dtype="str"))
    from_seq = season_from_seq_id(img["seq_id"].cat.categories).to_numpy()
    codes = img["seq_id"].cat.codes.to_numpy()
    season = season.fillna(pd.Series(np.where(codes >= 0, from_seq[codes], None), dtype="str"))
    img["season"] = pd.Categorical(season.to_numpy(),
                                   categories=sorted(season.dropna().unique()))
    stamps = images["datetime"].cast(pa.timestamp("ns")).to_numpy(zero_copy_only=False)
    img["datetime"] = pd.Series(stamps, dtype="datetime64[ns]")
    hour = img["datetime"].dt.hour
    day = (hour >= DAY_HOURS[0]) & (hour <= DAY_HOURS[1])
    img["day_night"] = pd.Categorical(np.where(hour.isna(), None,
                                               np.where(day, "day", "night")),
                                      categories=["day", "night"])
    img["width"] = _nullable_int(images["width"], "Int32")
    img["height"] = _nullable_int(images["height"], "Int32")
    img["corrupt"] = images["corrupt"].to_numpy(zero_copy_only=False).astype(bool)
    return img


def sequences_frame(images: pd.DataFrame) -> pd.DataFrame:
    """One row per ``seq_id``: location, season, n_frames, n_images present, start."""
    g = images.groupby("seq_id", observed=True, sort=False)
    seq = pd.DataFrame({
        "location": g["location"].first(),
        "season": g["season"].first(),
        "n_frames": g["seq_num_frames"].max(),
        "n_images": g.size().astype(np.int32),
        "start": g["datetime"].min(),
    })
    seq.index = pd.CategoricalIndex(seq.index, name="seq_id")
    seq = seq.reset_index()
    seq["location"] = seq["location"].astype(images["location"].dtype)
    seq["season"] = seq["season"].astype(images["season"].dtype)
    seq["n_frames"] = seq["n_frames"].astype("Int16")
    return seq


IMAGE_SCHEMA = pa.schema([
    ("image_id", _STR), ("file_name", _STR), ("seq_id", _STR),
    ("frame_num", pa.int32()), ("seq_num_frames", pa.int32()),
    ("location", pa.dictionary(pa.int32(), _STR)), ("season", pa.dictionary(pa.int32(), _STR)),
    ("datetime", pa.timestamp("s")), ("width", pa.int32()), ("height", pa.int32()),
    ("corrupt", pa.bool_()), ("source", pa.int16())])
ANNOTATION_SCHEMA = pa.schema([
    ("annotation_id", _STR), ("image_id", _STR), ("category_id", pa.int64()),
    ("season", pa.dictionary(pa.int32(), _STR)), ("count", pa.dictionary(pa.int32(), _STR)),
    ("sequence_level", pa.bool_()), ("source", pa.int16())])
