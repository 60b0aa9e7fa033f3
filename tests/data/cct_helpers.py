"""Small synthetic COCO-CT files in the published shape (bare NaN, sentinels, string counts)."""
from __future__ import annotations

import json
from pathlib import Path

CATEGORIES = [{"id": 0, "name": "empty"}, {"id": 5, "name": "zebra"},
              {"id": 47, "name": "wildebeest"}, {"id": 18, "name": "elephant"}]


def image(iid: str, *, seq: str, frame: int, n: int = 3, location: str = "D04",
          dt: str = "2010-08-19 18:24:57", width: int = 2048, **extra) -> dict:
    return {"id": iid, "file_name": f"{iid}.JPG", "frame_num": frame, "seq_id": seq,
            "width": width, "height": 1536 if width > 0 else -1, "corrupt": False,
            "location": location, "seq_num_frames": n, "datetime": dt, **extra}


def annotation(aid: str, iid: str, cat: int, *, season: str = "S1", seq: str = "",
               count=float("nan")) -> dict:
    return {"sequence_level_annotation": True, "id": aid, "image_id": iid, "category_id": cat,
            "seq_id": seq, "season": season, "count": count, "standing": float("nan")}


def write_cct(path: Path, images: list, annotations: list, categories=None, *,
              indent: int | None = 1, **top) -> Path:
    """Write like the published files: ``json.dump`` with bare NaN tokens."""
    doc = {"info": {"version": "2.0"}, "categories": CATEGORIES if categories is None
           else categories, "images": images, "annotations": annotations, **top}
    path.write_text(json.dumps(doc, indent=indent, allow_nan=True))
    return path


def small_season(path: Path, season: str = "S1", *, prefix: str = "") -> Path:
    """Two captures at two sites: a zebra+wildebeest herd (2 frames) and an empty frame."""
    p = prefix or season
    imgs = [image(f"{p}/A/1", seq=f"SER_{season}#A01#1#1", frame=1, n=2, location="A01"),
            image(f"{p}/A/2", seq=f"SER_{season}#A01#1#1", frame=2, n=2, location="A01",
                  dt="2010-08-19 03:00:00"),
            image(f"{p}/B/1", seq=f"SER_{season}#B02#1#7", frame=1, n=1, location="B02")]
    anns = [annotation(f"{p}-a1", f"{p}/A/1", 5, season=season, count="11-50"),
            annotation(f"{p}-a2", f"{p}/A/1", 47, season=season, count="1"),
            annotation(f"{p}-a3", f"{p}/A/2", 5, season=season, count="11-50"),
            annotation(f"{p}-a4", f"{p}/B/1", 0, season=season)]
    return write_cct(path, imgs, anns)
