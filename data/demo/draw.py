"""Drawing for the demo dataset: savanna scenery, species-specific animals, camera artefacts.

Everything here is a pure function of its arguments (including a ``numpy`` Generator), so a
frame is the same bytes whenever it is drawn with the same plan. ``data.demo.generate`` plans the
dataset; this module only paints it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

W, H = 512, 384
BAR_H = 18
GROUND_BOTTOM = H - BAR_H - 4  # feet of the nearest animals
REF_LEN = 230.0  # torso length in pixels of a zebra-sized animal at the nearest depth

RGB = tuple[int, int, int]


# --------------------------------------------------------------------------------------------
# Sites: every camera looks at its own scenery
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Site:
    name: str
    horizon: float            # horizon height as a fraction of the frame height
    tilt: float               # horizon drop in pixels from left to right edge
    sky: tuple[RGB, RGB]      # zenith, horizon (clear day)
    grass_dry: RGB            # season 1 (dry)
    grass_wet: RGB            # season 2 (green)
    hills: float              # amplitude of distant hills in pixels (0: none)
    trees: tuple[tuple[float, float, float], ...]   # (x fraction, depth 0..1, size)
    rocks: tuple[tuple[float, float, float], ...]   # (x fraction, depth 0..1, size)
    bush_line: float          # density of the bush line along the horizon (0..1)
    mound: float              # termite mound x fraction (<0: none)
    track: bool               # a light dirt track across the ground
    tall_grass: float         # foreground grass cover (0..1)
    seed: int


SITES: dict[str, Site] = {s.name: s for s in (
    Site("B03", 0.40, 6, ((96, 142, 196), (196, 208, 214)), (186, 160, 100), (118, 140, 70),
         14, (), (), 0.2, -1, False, 0.3, 11),
    Site("C05", 0.36, -10, ((110, 150, 190), (205, 210, 205)), (170, 150, 96), (96, 128, 62),
         0, ((0.06, 0.95, 1.4), (0.55, 0.25, 1.0), (0.8, 0.15, 0.9), (0.3, 0.1, 0.8)), (), 0.5,
         -1, False, 0.5, 12),
    Site("D04", 0.45, 4, ((120, 160, 205), (215, 215, 210)), (180, 165, 120), (128, 144, 84),
         8, ((0.2, 0.2, 1.0),), ((0.82, 0.35, 1.6), (0.95, 0.5, 1.2), (0.7, 0.25, 0.9)), 0.2,
         -1, False, 0.2, 13),
    Site("E08", 0.42, -5, ((105, 140, 180), (190, 200, 200)), (150, 140, 90), (84, 118, 58),
         0, ((0.45, 0.12, 0.9),), (), 1.0, -1, False, 0.6, 14),
    Site("F10", 0.50, 0, ((90, 135, 200), (200, 212, 222)), (195, 170, 110), (128, 150, 76),
         22, (), (), 0.1, 0.72, False, 0.2, 15),
    Site("G07", 0.38, 12, ((115, 148, 185), (210, 205, 195)), (176, 152, 104), (106, 132, 70),
         6, ((0.85, 0.3, 1.1), (0.12, 0.18, 0.9)), (), 0.3, -1, True, 0.3, 16),
    Site("H11", 0.34, -8, ((100, 130, 170), (185, 190, 195)), (160, 140, 100), (92, 120, 66),
         18, ((0.65, 0.08, 0.7),), ((0.1, 0.4, 1.3), (0.22, 0.3, 0.8)), 0.6, -1, False, 0.4,
         17),
    Site("J06", 0.44, 3, ((125, 165, 210), (220, 220, 215)), (190, 172, 118), (112, 146, 78),
         0, ((0.92, 0.9, 1.3), (0.35, 0.15, 0.8)), (), 0.35, -1, False, 0.9, 18),
)}


def horizon_y(site: Site, x: float | np.ndarray) -> float | np.ndarray:
    """Row of the horizon at column ``x``."""
    return site.horizon * H + site.tilt * (np.asarray(x) / W - 0.5)


def depth_to_y(site: Site, x: float, depth: float) -> float:
    """Ground row at column ``x`` for relative nearness ``depth`` (0 = horizon, 1 = nearest)."""
    hy = float(horizon_y(site, x))
    return hy + depth * (GROUND_BOTTOM - hy)


def _mix(a, b, t):
    return tuple(int(round(a[i] + (b[i] - a[i]) * t)) for i in range(3))


def _scale(c, f):
    return tuple(int(max(0, min(255, round(v * f)))) for v in c)


def _acacia(draw: ImageDraw.ImageDraw, rng: np.random.Generator, x: float, y: float,
            size: float, crown: RGB, trunk: RGB) -> None:
    """Flat-topped umbrella acacia whose trunk stands on (x, y)."""
    h = size * 1.1
    draw.line([(x, y), (x + size * 0.05, y - h * 0.55)], fill=trunk, width=max(2, int(size * 0.06)))
    for dx in (-0.25, 0.2):
        draw.line([(x + size * 0.05, y - h * 0.5), (x + size * dx, y - h * 0.85)], fill=trunk,
                  width=max(1, int(size * 0.035)))
    cy = y - h * 0.9
    for _ in range(7):
        cx = x + rng.uniform(-0.55, 0.55) * size
        rw = size * rng.uniform(0.2, 0.35)
        rh = size * rng.uniform(0.07, 0.12)
        col = _scale(crown, rng.uniform(0.85, 1.1))
        draw.ellipse([cx - rw, cy - rh + rng.uniform(-0.06, 0.04) * size, cx + rw, cy + rh],
                     fill=col)


def _rock(draw: ImageDraw.ImageDraw, rng: np.random.Generator, x: float, y: float,
          size: float) -> None:
    """A kopje: a cluster of rounded granite boulders resting on (x, y)."""
    for _ in range(5):
        rw = size * rng.uniform(0.25, 0.5)
        rh = rw * rng.uniform(0.5, 0.8)
        cx = x + rng.uniform(-0.5, 0.5) * size
        g = int(rng.uniform(120, 165))
        draw.ellipse([cx - rw, y - 2 * rh, cx + rw, y + rh * 0.1], fill=(g, g - 6, g - 14))
        draw.ellipse([cx - rw * 0.6, y - 2 * rh, cx + rw * 0.3, y - rh * 1.3],
                     fill=(g + 25, g + 20, g + 12))


@lru_cache(maxsize=64)
def background(site_name: str, season: str) -> tuple[np.ndarray, np.ndarray]:
    """Daylight scene of a site in a season (H, W, 3 float32) and its nearness map (H, W).

    The nearness map is 0 in the sky and rises from 0 at the horizon to 1 at the bottom; the
    infrared flash and the haze follow it.
    """
    site = SITES[site_name]
    rng = np.random.default_rng(site.seed)
    wet = season != "S1"
    grass = site.grass_wet if wet else site.grass_dry
    xs = np.arange(W, dtype=np.float32)
    ys = np.arange(H, dtype=np.float32)[:, None]
    hy = horizon_y(site, xs)[None, :].astype(np.float32)
    # distant hills raise the "sky line"
    hill = np.zeros(W, np.float32)
    if site.hills:
        ph = rng.uniform(0, 6.28, 3)
        hill = site.hills * (0.6 + 0.4 * np.sin(xs / 70 + ph[0]) * np.sin(xs / 23 + ph[1])
                             + 0.2 * np.sin(xs / 140 + ph[2]))
    sky_t = np.clip(ys / np.maximum(hy, 1), 0, 1)[..., None]
    top, bot = np.array(site.sky[0], np.float32), np.array(site.sky[1], np.float32)
    img = top + (bot - top) * sky_t ** 1.5
    img = np.broadcast_to(img, (H, W, 3)).copy()
    hills_mask = (ys >= hy - hill[None, :]) & (ys < hy)
    hill_col = np.array(_mix(site.sky[1], (90, 110, 120), 0.45), np.float32)
    img[hills_mask] = hill_col
    near = np.clip((ys - hy) / (GROUND_BOTTOM - hy), 0, 1).astype(np.float32)
    ground = ys >= hy
    # grass: colour darkens and saturates towards the camera, with vertical streak texture
    far_col = np.array(_mix(grass, site.sky[1], 0.35), np.float32)
    near_col = np.array(grass, np.float32)
    g_col = far_col + (near_col - far_col) * np.sqrt(near)[..., None]
    streak = rng.normal(0, 1, (H // 4 + 1, W)).astype(np.float32)
    streak = np.repeat(streak, 4, axis=0)[:H]
    fine = rng.normal(0, 1, (H, W)).astype(np.float32)
    tex = (0.6 * streak + 0.4 * fine) * (4 + 18 * near)
    g_img = g_col + tex[..., None] * np.array([1.0, 0.95, 0.7], np.float32)
    img = np.where(ground[..., None], g_img, img)
    if site.track:
        cx = W * 0.5 + (ys - hy) * 0.9
        track = ground & (np.abs(xs[None, :] - cx) < 6 + 60 * near)
        img[track] = img[track] * 0.6 + np.array([205, 185, 150], np.float32) * 0.4
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    # bush line along the horizon
    n_bush = int(site.bush_line * 40)
    for _ in range(n_bush):
        x = rng.uniform(0, W)
        y = float(horizon_y(site, x)) + rng.uniform(-1, 3)
        r = rng.uniform(6, 16) * (0.6 + site.bush_line)
        col = _scale((62, 82, 48) if wet else (88, 92, 62), rng.uniform(0.8, 1.15))
        draw.ellipse([x - r * 1.6, y - r, x + r * 1.6, y + r * 0.3], fill=col)
    if site.mound >= 0:
        x = site.mound * W
        y = depth_to_y(site, x, 0.3)
        draw.polygon([(x - 30, y), (x - 8, y - 55), (x + 4, y - 62), (x + 26, y)],
                     fill=(168, 112, 78))
    for (xf, depth, size) in sorted(site.rocks, key=lambda r: r[1]):
        x = xf * W
        _rock(draw, rng, x, depth_to_y(site, x, depth), 60 * size * (0.3 + depth))
    for (xf, depth, size) in sorted(site.trees, key=lambda t: t[1]):
        x = xf * W
        y = depth_to_y(site, x, depth)
        tree_size = 150 * size * (0.3 + depth)
        _acacia(draw, rng, x, y, tree_size, (58, 80, 44) if wet else (84, 90, 54), (64, 52, 42))
    out = np.asarray(pil, dtype=np.float32)
    nearness = np.where(ground, near, 0.0).astype(np.float32)
    return out, nearness


# --------------------------------------------------------------------------------------------
# Animals
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Body:
    size: float              # torso length relative to a zebra
    torso_h: float           # torso height / torso length
    rise: float              # shoulder above rump (fraction of torso height)
    leg: float               # leg length / torso length
    leg_w: float
    neck: float              # neck length / torso length
    neck_w: float
    neck_up: float           # neck angle above horizontal (degrees) with the head up
    head: float              # head length / torso length
    head_h: float
    tail: float
    coat: RGB
    belly: RGB | None
    legs: RGB | None
    depth: tuple[float, float]   # nearness range where the species is placed
    herd: tuple[int, int]        # usual group size range


BODIES: dict[str, Body] = {
    "zebra": Body(1.0, 0.46, 0.05, 0.62, 0.075, 0.5, 0.26, 50, 0.42, 0.16, 0.45,
                  (236, 234, 228), None, None, (0.35, 0.95), (2, 6)),
    "wildebeest": Body(1.0, 0.5, 0.28, 0.62, 0.06, 0.42, 0.28, 35, 0.48, 0.17, 0.5,
                       (78, 74, 72), None, (95, 88, 80), (0.35, 0.95), (2, 8)),
    "gazellethomsons": Body(0.6, 0.42, 0.05, 0.78, 0.045, 0.45, 0.14, 60, 0.34, 0.13, 0.18,
                            (190, 128, 72), (246, 242, 234), (205, 160, 110), (0.5, 1.0),
                            (2, 6)),
    "gazellegrants": Body(0.74, 0.44, 0.05, 0.8, 0.05, 0.5, 0.15, 60, 0.34, 0.13, 0.2,
                          (202, 156, 104), (246, 242, 234), (212, 178, 134), (0.45, 1.0),
                          (2, 5)),
    "impala": Body(0.78, 0.44, 0.04, 0.78, 0.05, 0.48, 0.16, 58, 0.36, 0.14, 0.25,
                   (172, 90, 44), (244, 238, 228), (176, 116, 74), (0.45, 1.0), (2, 6)),
    "hartebeest": Body(1.0, 0.44, 0.35, 0.7, 0.055, 0.45, 0.2, 45, 0.55, 0.14, 0.35,
                       (182, 122, 82), (198, 158, 118), (160, 104, 70), (0.35, 0.9), (1, 3)),
    "buffalo": Body(1.2, 0.6, 0.08, 0.45, 0.11, 0.25, 0.42, 10, 0.4, 0.26, 0.42,
                    (44, 40, 38), None, (36, 33, 31), (0.35, 0.9), (2, 5)),
    "elephant": Body(1.8, 0.78, 0.0, 0.7, 0.2, 0.12, 0.55, 5, 0.42, 0.5, 0.3,
                     (128, 122, 116), None, None, (0.28, 0.55), (1, 3)),
    "giraffe": Body(1.1, 0.5, 0.35, 1.15, 0.055, 1.35, 0.16, 68, 0.32, 0.13, 0.45,
                    (206, 150, 88), None, (222, 196, 150), (0.2, 0.42), (1, 3)),
    "warthog": Body(0.72, 0.5, 0.12, 0.34, 0.075, 0.1, 0.36, 0, 0.5, 0.3, 0.3,
                    (104, 92, 84), None, (88, 78, 70), (0.55, 1.0), (1, 4)),
    "lionfemale": Body(1.05, 0.36, 0.02, 0.5, 0.085, 0.24, 0.26, 25, 0.32, 0.2, 0.85,
                       (198, 156, 98), (226, 200, 158), (192, 150, 96), (0.4, 0.95), (1, 3)),
    "hyenaspotted": Body(0.85, 0.48, 0.35, 0.58, 0.075, 0.3, 0.34, 25, 0.36, 0.24, 0.25,
                         (170, 148, 110), (186, 166, 128), (160, 140, 104), (0.45, 1.0),
                         (1, 3)),
    "guineafowl": Body(0.42, 0.62, 0.0, 0.4, 0.04, 0.18, 0.16, 70, 0.22, 0.14, 0.0,
                       (56, 58, 72), None, (90, 90, 96), (0.72, 1.0), (4, 10)),
}


@dataclass(frozen=True)
class Pose:
    facing: int        # +1 right, -1 left
    head_down: bool    # grazing / drinking
    phase: float       # leg swing phase (walking)
    walking: bool


def _ellipse_pts(cx, cy, a, b, ang, n=28):
    ca, sa = math.cos(ang), math.sin(ang)
    pts = []
    for k in range(n):
        t = 2 * math.pi * k / n
        x, y = a * math.cos(t), b * math.sin(t)
        pts.append((cx + x * ca - y * sa, cy + x * sa + y * ca))
    return pts


def _limb(p0, p1, w0, w1):
    """Quad from p0 (width w0) to p1 (width w1)."""
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    n = math.hypot(dx, dy) or 1.0
    nx, ny = -dy / n, dx / n
    return [(p0[0] + nx * w0 / 2, p0[1] + ny * w0 / 2), (p1[0] + nx * w1 / 2, p1[1] + ny * w1 / 2),
            (p1[0] - nx * w1 / 2, p1[1] - ny * w1 / 2), (p0[0] - nx * w0 / 2, p0[1] - ny * w0 / 2)]


def _torso_pts(cx, cy, L, h, rise, n=36):
    pts = []
    for k in range(n):
        t = 2 * math.pi * k / n
        c, s = math.cos(t), math.sin(t)
        x = math.copysign(abs(c) ** 0.8, c) * L / 2
        y = math.copysign(abs(s) ** 0.85, s) * h / 2
        y -= rise * h * x / L
        pts.append((cx + x, cy + y))
    return pts


@dataclass
class Sprite:
    image: Image.Image           # RGBA
    foot: tuple[float, float]    # ground contact point in sprite pixels
    eyes: list[tuple[float, float]]


def draw_animal(species: str, length_px: float, pose: Pose, rng: np.random.Generator) -> Sprite:
    """An animal of ``species`` whose torso is ``length_px`` long, facing right before flip."""
    body = BODIES[species]
    ss = 2 if length_px < 100 else 1
    L = length_px * ss
    tone = rng.uniform(0.9, 1.08)
    coat = _scale(body.coat, tone)
    legs_col = _scale(body.legs or body.coat, tone)
    cw = int(L * 3.4) + 8
    chh = int(L * (body.torso_h + body.leg + body.neck * 1.05 + body.head + 0.5)) + 8
    ox = cw * 0.5
    oy = chh - L * (body.leg + body.torso_h / 2 + 0.06)   # torso centre
    ground = oy + L * (body.torso_h / 2 + body.leg) - L * 0.08
    img = Image.new("RGBA", (cw, chh), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    h = L * body.torso_h

    def top_y(x):  # torso top at relative x (-0.5..0.5)
        return oy - h / 2 - body.rise * h * x

    def bot_y(x):
        return oy + h / 2 - body.rise * h * x

    if species == "guineafowl":
        return _draw_guineafowl(img, d, body, L, ss, ox, oy, ground, pose, rng, coat)

    # legs: far pair first (darker), near pair after the torso
    swing = math.sin(pose.phase) * 0.12 * L if pose.walking else 0.0
    legs = [(0.3, -1, True), (-0.33, 1, True), (0.36, 1, False), (-0.27, -1, False)]
    far_col = _scale(legs_col, 0.72)

    def leg(xr, sgn, col):
        x0 = ox + xr * L
        y0 = bot_y(xr) - 0.2 * h
        x1 = x0 + sgn * swing
        foot_w = body.leg_w * L * 0.7
        knee = (x0 + sgn * swing * 0.4 + (0.02 if xr > 0 else -0.04) * L, (y0 + ground) / 2)
        d.polygon(_limb((x0, y0), knee, body.leg_w * L * 1.7, body.leg_w * L), fill=col)
        d.polygon(_limb(knee, (x1, ground), body.leg_w * L, foot_w), fill=col)
        hoof = (30, 28, 26) if species != "elephant" else _scale(col, 0.9)
        d.ellipse([x1 - foot_w * 0.7, ground - foot_w * 0.9,
                   x1 + foot_w * 0.7, ground + foot_w * 0.2],
                  fill=hoof)

    for xr, sgn, far in legs:
        if far:
            leg(xr, sgn, far_col)
    # tail
    tail_base = (ox - 0.45 * L, top_y(-0.45) + 0.22 * h)
    if species == "warthog":
        tail_end = (tail_base[0] - 0.08 * L, tail_base[1] - body.tail * L)
    elif species == "lionfemale":
        tail_end = (tail_base[0] - 0.35 * L, tail_base[1] + body.tail * L * 0.75)
    else:
        tail_end = (tail_base[0] - 0.1 * L, tail_base[1] + body.tail * L)
    if body.tail:
        d.line([tail_base, tail_end], fill=_scale(coat, 0.8), width=max(2, int(0.03 * L)))
    # torso
    d.polygon(_torso_pts(ox, oy, L, h, body.rise), fill=coat)
    for xr, sgn, far in legs:
        if not far:
            leg(xr, sgn, legs_col)
    # neck and head
    nb = (ox + 0.32 * L, top_y(0.32) + 0.3 * h)
    up = math.radians(body.neck_up if not pose.head_down else -45)
    ne = (nb[0] + body.neck * L * math.cos(up), nb[1] - body.neck * L * math.sin(up))
    if pose.head_down:
        # the head reaches the grass
        ne = (ne[0], min(ne[1], ground - body.head * L * 0.95))
    d.polygon(_limb(nb, ne, body.neck_w * L * 1.15, body.neck_w * L * 0.75), fill=coat)
    head_ang = math.radians(75 if pose.head_down else max(20, 90 - body.neck_up - 10))
    if species in ("buffalo", "elephant", "warthog"):
        head_ang = math.radians(70 if species == "elephant" else 40)
    hl, hh = body.head * L, body.head_h * L
    hc = (ne[0] + math.cos(head_ang) * hl * 0.42, ne[1] + math.sin(head_ang) * hl * 0.42)
    head_col = coat
    d.polygon(_ellipse_pts(hc[0], hc[1], hl / 2, hh / 2, head_ang), fill=head_col)
    muzzle = (ne[0] + math.cos(head_ang) * hl * 0.82, ne[1] + math.sin(head_ang) * hl * 0.82)
    eye = (ne[0] + math.cos(head_ang) * hl * 0.28 - math.sin(head_ang) * hh * 0.18,
           ne[1] + math.sin(head_ang) * hl * 0.28 + math.cos(head_ang) * hh * 0.18 - hh * 0.15)
    geo = dict(L=L, h=h, ox=ox, oy=oy, ground=ground, top_y=top_y, bot_y=bot_y, nb=nb, ne=ne,
               hc=hc, hl=hl, hh=hh, head_ang=head_ang, muzzle=muzzle, eye=eye,
               tail_base=tail_base, tail_end=tail_end, pose=pose)
    img, geo = _crop_canvas(img, geo, body)
    eye = geo["eye"]
    arr = np.asarray(img).copy()
    _TEXTURES.get(species, _plain)(arr, body, geo, rng, coat)
    img = Image.fromarray(arr, "RGBA")
    d = ImageDraw.Draw(img)
    _DETAILS.get(species, lambda *a: None)(d, body, geo, rng, coat)
    er = max(1.0, 0.018 * L)
    d.ellipse([eye[0] - er, eye[1] - er, eye[0] + er, eye[1] + er], fill=(12, 10, 10))
    return _finish(img, ss, (geo["ox"], geo["ground"]), [eye])


def _crop_canvas(img: Image.Image, geo: dict, body: Body) -> tuple[Image.Image, dict]:
    """Crop the drawing canvas to the silhouette plus room for horns, ears and tails."""
    L = geo["L"]
    bx0, by0, bx1, by1 = img.getbbox() or (0, 0, 1, 1)
    m = int(0.35 * L) + 2
    x0, y0 = max(0, bx0 - m), max(0, by0 - m)
    x1, y1 = min(img.width, bx1 + m), min(img.height, by1 + m)
    img = img.crop((x0, y0, x1, y1))
    out = dict(geo)
    for k, v in geo.items():
        if isinstance(v, tuple) and len(v) == 2:
            out[k] = (v[0] - x0, v[1] - y0)
    out["ox"], out["oy"], out["ground"] = geo["ox"] - x0, geo["oy"] - y0, geo["ground"] - y0
    oy, h, rise = out["oy"], geo["h"], body.rise
    out["top_y"] = lambda x: oy - h / 2 - rise * h * x
    out["bot_y"] = lambda x: oy + h / 2 - rise * h * x
    return img, out


def _finish(img: Image.Image, ss: int, foot, eyes) -> Sprite:
    """Crop to the animal, shade it top-lit, and downsample from the drawing scale."""
    bbox = img.getbbox() or (0, 0, 1, 1)
    img = img.crop(bbox)
    fx, fy = foot[0] - bbox[0], foot[1] - bbox[1]
    eyes = [(x - bbox[0], y - bbox[1]) for x, y in eyes]
    arr = np.asarray(img).copy()
    rows = np.arange(arr.shape[0], dtype=np.float32) / max(1, arr.shape[0] - 1)
    shade = (np.clip(1.1 - 0.3 * rows, 0.75, 1.12) * 256).astype(np.uint32)
    rgb = (arr[..., :3].astype(np.uint32) * shade[:, None, None]) >> 8
    arr[..., :3] = np.minimum(rgb, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGBA")
    if ss != 1:
        img = img.reduce(ss)
        fx, fy = fx / ss, fy / ss
        eyes = [(x / ss, y / ss) for x, y in eyes]
    return Sprite(img, (fx, fy), eyes)


def _grid(arr, geo):
    hgt, wid = arr.shape[:2]
    ys, xs = np.mgrid[0:hgt, 0:wid].astype(np.float32)
    return (xs - geo["ox"]) / geo["L"], (ys - geo["oy"]) / geo["L"]


def _apply(arr, mask, col, alpha=1.0):
    m = mask & (arr[..., 3] > 0)
    arr[..., :3][m] = (arr[..., :3][m] * (1 - alpha) + np.array(col, np.float32) * alpha).astype(
        np.uint8)


def _belly(arr, body, geo, xs, ys, frac=0.22):
    """Lighter underside of the torso."""
    if body.belly is None:
        return
    bottom = (geo["oy"] + geo["h"] / 2 - body.rise * geo["h"] * xs - geo["oy"]) / geo["L"]
    m = (ys > bottom - frac * body.torso_h) & (np.abs(xs) < 0.48) & (ys < bottom + 0.02)
    _apply(arr, m, body.belly)


def _fur(arr, rng, amount=10.0):
    """Fine fur/skin grain (a crop of a fixed noise bank: cheap and deterministic)."""
    h, w = arr.shape[:2]
    bank = _fur_bank()
    if h > bank.shape[0] or w > bank.shape[1]:
        bank = np.tile(bank, (h // bank.shape[0] + 1, w // bank.shape[1] + 1))
    y = int(rng.integers(0, bank.shape[0] - h + 1))
    x = int(rng.integers(0, bank.shape[1] - w + 1))
    noise = (bank[y:y + h, x:x + w] * (amount / 10.0)).astype(np.int16)
    rgb = arr[..., :3].astype(np.int16) + noise[..., None]
    arr[..., :3] = np.clip(rgb, 0, 255).astype(np.uint8)


@lru_cache(maxsize=1)
def _fur_bank() -> np.ndarray:
    return np.random.default_rng(4321).normal(0, 10, (768, 768)).astype(np.float32)


def _plain(arr, body, geo, rng, coat):
    xs, ys = _grid(arr, geo)
    _belly(arr, body, geo, xs, ys)
    _fur(arr, rng, 7)


def _tex_zebra(arr, body, geo, rng, coat):
    xs, ys = _grid(arr, geo)
    legs = ys > body.torso_h * 0.35
    period = rng.uniform(0.085, 0.11)
    warp = 0.04 * np.sin(ys * 11 + rng.uniform(0, 6))
    v = np.sin(2 * np.pi * (xs + warp) / period)
    diag = np.sin(2 * np.pi * (xs * 0.6 + ys * 0.8) / (period * 1.3))
    hz = np.sin(2 * np.pi * ys / (period * 0.7))
    pat = np.where(legs, hz, np.where(xs < -0.25, diag, v))
    _apply(arr, pat > 0.15, (24, 22, 22))
    _fur(arr, rng, 6)


def _tex_wildebeest(arr, body, geo, rng, coat):
    xs, ys = _grid(arr, geo)
    bands = (np.sin(2 * np.pi * xs / 0.07) > 0.4) & (xs > -0.05) & (ys < body.torso_h * 0.3)
    _apply(arr, bands, _scale(coat, 0.6), 0.6)
    _fur(arr, rng, 8)


def _tex_gazelle(arr, body, geo, rng, coat, stripe_alpha: float):
    xs, ys = _grid(arr, geo)
    _belly(arr, body, geo, xs, ys, frac=0.34)
    bottom = body.torso_h / 2 - body.rise * body.torso_h * xs
    stripe = (ys > bottom - 0.34 * body.torso_h - 0.09) & (ys < bottom - 0.34 * body.torso_h) \
        & (np.abs(xs) < 0.4)
    _apply(arr, stripe, (28, 22, 18), stripe_alpha)
    # white rump patch; in Grant's gazelle it reaches above the tail
    rump_top = -0.05 if stripe_alpha < 0.5 else 0.08
    rump = (xs < -0.38) & (ys > rump_top * body.torso_h)
    _apply(arr, rump, (240, 236, 228))
    _fur(arr, rng, 6)


def _tex_thomsons(arr, body, geo, rng, coat):
    _tex_gazelle(arr, body, geo, rng, coat, stripe_alpha=rng.uniform(0.75, 0.95))


def _tex_grants(arr, body, geo, rng, coat):
    _tex_gazelle(arr, body, geo, rng, coat, stripe_alpha=rng.uniform(0.0, 0.3))


def _tex_impala(arr, body, geo, rng, coat):
    xs, ys = _grid(arr, geo)
    bottom = body.torso_h / 2 - body.rise * body.torso_h * xs
    flank = (ys > bottom - 0.55 * body.torso_h) & (np.abs(xs) < 0.5) & (ys < bottom)
    _apply(arr, flank, (200, 150, 104))
    _belly(arr, body, geo, xs, ys, frac=0.25)
    rump = (xs < -0.4) & (xs > -0.47) & (ys > -0.1) & (ys < 0.15)
    _apply(arr, rump, (30, 24, 20))
    _fur(arr, rng, 6)


def _tex_giraffe(arr, body, geo, rng, coat):
    """Reticulated coat: brown polygonal patches separated by a cream network."""
    hgt, wid = arr.shape[:2]
    cell = max(5.0, geo["L"] * 0.14)
    patches = Image.new("L", (wid, hgt), 0)
    d = ImageDraw.Draw(patches)
    for gy in np.arange(-cell, hgt + cell, cell):
        shift = rng.uniform(0, cell)
        for gx in np.arange(-cell, wid + cell, cell):
            cx = gx + shift + rng.uniform(-0.15, 0.15) * cell
            cy = gy + rng.uniform(-0.15, 0.15) * cell
            r = cell * 0.4
            pts = [(cx + r * rng.uniform(0.8, 1.2) * math.cos(a),
                    cy + r * rng.uniform(0.8, 1.2) * math.sin(a))
                   for a in np.linspace(0, 2 * math.pi, 6, endpoint=False) + rng.uniform(0, 1)]
            d.polygon(pts, fill=255)
    brown = np.asarray(patches) > 0
    _apply(arr, ~brown, (232, 214, 176))
    _apply(arr, brown, (138, 78, 40))
    _fur(arr, rng, 5)


def _tex_spots(arr, body, geo, rng, coat):
    xs, ys = _grid(arr, geo)
    _belly(arr, body, geo, xs, ys, frac=0.2)
    img = Image.fromarray(arr, "RGBA")
    spots = Image.new("L", img.size, 0)
    d = ImageDraw.Draw(spots)
    L = geo["L"]
    for _ in range(70):
        x = geo["ox"] + rng.uniform(-0.55, 0.6) * L
        y = geo["oy"] + rng.uniform(-0.35, 0.9) * L
        r = rng.uniform(0.02, 0.035) * L
        d.ellipse([x - r, y - r, x + r, y + r], fill=255)
    m = np.asarray(spots) > 0
    _apply(arr, m, (52, 40, 30), 0.85)
    _fur(arr, rng, 7)


def _tex_elephant(arr, body, geo, rng, coat):
    xs, ys = _grid(arr, geo)
    wr = np.sin(ys * 90 + 3 * np.sin(xs * 20)) > 0.7
    _apply(arr, wr, _scale(coat, 0.82), 0.5)
    _fur(arr, rng, 5)


def _tex_lion(arr, body, geo, rng, coat):
    xs, ys = _grid(arr, geo)
    _belly(arr, body, geo, xs, ys, frac=0.25)
    _fur(arr, rng, 5)


def _tex_buffalo(arr, body, geo, rng, coat):
    _fur(arr, rng, 6)


def _tex_warthog(arr, body, geo, rng, coat):
    _fur(arr, rng, 12)


_TEXTURES = {
    "zebra": _tex_zebra, "wildebeest": _tex_wildebeest, "gazellethomsons": _tex_thomsons,
    "gazellegrants": _tex_grants, "impala": _tex_impala, "giraffe": _tex_giraffe,
    "hyenaspotted": _tex_spots, "elephant": _tex_elephant, "lionfemale": _tex_lion,
    "buffalo": _tex_buffalo, "warthog": _tex_warthog,
}


def _ear(d, geo, size, col, back=0.1, up=1.0):
    ne, L = geo["ne"], geo["L"]
    base = (ne[0] + back * L * 0.3, ne[1] - geo["hh"] * 0.3)
    tip = (base[0] - size * L * 0.4, base[1] - size * L * up)
    d.polygon(_limb(base, tip, size * L * 0.5, size * L * 0.1), fill=col)


def _horns(d, geo, length, col, curve, width, spread=0.0):
    L = geo["L"]
    ne = geo["ne"]
    base = (ne[0] + geo["hl"] * 0.12, ne[1] - geo["hh"] * 0.35)
    pts = [base]
    for k in range(1, 7):
        t = k / 6
        pts.append((base[0] - length * L * (0.2 * t - curve * t * t + spread * t),
                    base[1] - length * L * t))
    d.line(pts, fill=col, width=max(1, int(width * L)), joint="curve")


def _mane_line(geo, body):
    """Points along the upper edge of the neck (where manes grow)."""
    nb, ne, L = geo["nb"], geo["ne"], geo["L"]
    dx, dy = ne[0] - nb[0], ne[1] - nb[1]
    n = math.hypot(dx, dy) or 1.0
    px, py = dy / n, -dx / n  # perpendicular pointing up/back
    if py > 0:
        px, py = -px, -py
    w0, w1 = body.neck_w * L * 0.55, body.neck_w * L * 0.35
    return [(nb[0] + px * w0, nb[1] + py * w0), (ne[0] + px * w1, ne[1] + py * w1)]


def _det_zebra(d, body, geo, rng, coat):
    L = geo["L"]
    d.line(_mane_line(geo, body), fill=(20, 20, 20), width=max(2, int(0.05 * L)))
    m = geo["muzzle"]
    r = geo["hh"] * 0.38
    d.ellipse([m[0] - r, m[1] - r, m[0] + r, m[1] + r], fill=(26, 24, 24))
    _ear(d, geo, 0.13, (230, 228, 222))
    d.line([geo["tail_base"], geo["tail_end"]], fill=(30, 28, 28), width=max(2, int(0.035 * L)))


def _det_wildebeest(d, body, geo, rng, coat):
    L = geo["L"]
    # beard hanging from the throat and a dark mane
    nb, ne = geo["nb"], geo["ne"]
    for t in np.linspace(0.2, 0.9, 6):
        x = nb[0] + (ne[0] - nb[0]) * t + 0.06 * L
        y = nb[1] + (ne[1] - nb[1]) * t + 0.08 * L
        d.line([(x, y), (x - 0.02 * L, y + 0.13 * L)], fill=(24, 22, 22),
               width=max(1, int(0.025 * L)))
    d.line(_mane_line(geo, body), fill=(30, 28, 28), width=max(2, int(0.05 * L)))
    m = geo["muzzle"]
    r = geo["hh"] * 0.42
    d.ellipse([m[0] - r, m[1] - r, m[0] + r, m[1] + r], fill=(36, 32, 32))
    # cow-like horns curving outwards and up
    base = (ne[0] + 0.04 * L, ne[1] - geo["hh"] * 0.4)
    d.line([base, (base[0] - 0.12 * L, base[1] - 0.02 * L),
            (base[0] - 0.15 * L, base[1] - 0.12 * L)],
           fill=(40, 38, 36), width=max(2, int(0.03 * L)), joint="curve")
    d.line([geo["tail_base"], geo["tail_end"]], fill=(20, 18, 18), width=max(2, int(0.04 * L)))


def _det_gazelle(d, body, geo, rng, coat, horn_len):
    L = geo["L"]
    _horns(d, geo, horn_len, (44, 38, 30), 0.2, 0.022)
    _ear(d, geo, 0.11, _scale(coat, 0.9), back=0.25)
    d.line([geo["tail_base"], geo["tail_end"]], fill=(26, 22, 20), width=max(2, int(0.03 * L)))
    # dark facial stripe
    m, ne = geo["muzzle"], geo["ne"]
    d.line([ne, m], fill=_scale(coat, 0.55), width=max(1, int(0.02 * L)))


def _det_thomsons(d, body, geo, rng, coat):
    _det_gazelle(d, body, geo, rng, coat, 0.3)


def _det_grants(d, body, geo, rng, coat):
    _det_gazelle(d, body, geo, rng, coat, 0.42)


def _det_impala(d, body, geo, rng, coat):
    L = geo["L"]
    if rng.random() < 0.75:
        _horns(d, geo, 0.6, (40, 34, 28), 0.4, 0.03, spread=0.12)
    _ear(d, geo, 0.14, _scale(coat, 0.9), back=0.3)
    d.line([geo["tail_base"], geo["tail_end"]], fill=(245, 240, 232), width=max(2, int(0.04 * L)))


def _det_hartebeest(d, body, geo, rng, coat):
    L = geo["L"]
    ne = geo["ne"]
    base = (ne[0] + 0.02 * L, ne[1] - geo["hh"] * 0.5)
    top = (base[0] + 0.02 * L, base[1] - 0.12 * L)
    d.line([base, top], fill=(50, 40, 32), width=max(2, int(0.05 * L)))
    for tip in ((top[0] - 0.1 * L, top[1] - 0.05 * L), (top[0] + 0.06 * L, top[1] - 0.07 * L)):
        d.line([top, tip], fill=(50, 40, 32), width=max(2, int(0.03 * L)))
    d.line([ne, geo["muzzle"]], fill=_scale(coat, 0.6), width=max(1, int(0.04 * L)))
    d.line([geo["tail_base"], geo["tail_end"]], fill=(30, 26, 22), width=max(2, int(0.03 * L)))


def _det_buffalo(d, body, geo, rng, coat):
    L = geo["L"]
    ne = geo["ne"]
    c = (ne[0] + 0.02 * L, ne[1] - geo["hh"] * 0.25)
    col = (118, 110, 100)
    d.ellipse([c[0] - 0.12 * L, c[1] - 0.08 * L, c[0] + 0.12 * L, c[1] + 0.03 * L], fill=col)
    for s in (-1, 1):  # the boss, then horns sweeping down and up again
        d.line([c, (c[0] + s * 0.2 * L, c[1] + 0.06 * L), (c[0] + s * 0.3 * L, c[1] - 0.02 * L),
                (c[0] + s * 0.32 * L, c[1] - 0.14 * L)],
               fill=col, width=max(2, int(0.06 * L)), joint="curve")
    d.ellipse([c[0] - 0.2 * L, c[1] - 0.01 * L, c[0] - 0.08 * L, c[1] + 0.07 * L],
              fill=_scale(coat, 1.1))
    d.line([geo["tail_base"], geo["tail_end"]], fill=(20, 18, 18), width=max(2, int(0.035 * L)))


def _det_elephant(d, body, geo, rng, coat):
    L = geo["L"]
    ne, hc, hl = geo["ne"], geo["hc"], geo["hl"]
    ear = _ellipse_pts(ne[0] - 0.02 * L, ne[1] + 0.08 * L, 0.2 * L, 0.28 * L, 0.2)
    d.polygon(ear, fill=_scale(coat, 0.88), outline=_scale(coat, 0.7))
    # trunk from the head to near the ground
    tip = (hc[0] + 0.2 * L, geo["ground"] - 0.12 * L)
    mid = (hc[0] + 0.18 * L, (hc[1] + tip[1]) / 2)
    d.polygon(_limb((hc[0] + hl * 0.2, hc[1]), mid, 0.16 * L, 0.11 * L), fill=coat)
    d.polygon(_limb(mid, tip, 0.11 * L, 0.07 * L), fill=coat)
    tusk0 = (hc[0] + hl * 0.25, hc[1] + geo["hh"] * 0.3)
    d.line([tusk0, (tusk0[0] + 0.16 * L, tusk0[1] + 0.1 * L), (tusk0[0] + 0.24 * L, tusk0[1])],
           fill=(236, 230, 214), width=max(2, int(0.04 * L)), joint="curve")


def _det_giraffe(d, body, geo, rng, coat):
    L = geo["L"]
    ne = geo["ne"]
    for dx in (0.0, 0.05):
        base = (ne[0] + dx * L, ne[1] - geo["hh"] * 0.4)
        d.line([base, (base[0] - 0.02 * L, base[1] - 0.09 * L)], fill=(70, 50, 34),
               width=max(2, int(0.025 * L)))
    # short dark mane
    d.line([geo["nb"], geo["ne"]], fill=(120, 72, 40), width=max(1, int(0.025 * L)))
    d.line([geo["tail_end"], (geo["tail_end"][0], geo["tail_end"][1] + 0.1 * L)],
           fill=(30, 24, 20), width=max(2, int(0.04 * L)))


def _det_warthog(d, body, geo, rng, coat):
    L = geo["L"]
    m, ne = geo["muzzle"], geo["ne"]
    d.line([(m[0] - 0.05 * L, m[1]), (m[0] + 0.02 * L, m[1] - 0.12 * L)], fill=(235, 228, 210),
           width=max(2, int(0.035 * L)))
    for t in (0.3, 0.6):  # warts
        x = ne[0] + (m[0] - ne[0]) * t
        y = ne[1] + (m[1] - ne[1]) * t - geo["hh"] * 0.4
        r = 0.035 * L
        d.ellipse([x - r, y - r, x + r, y + r], fill=_scale(coat, 0.75))
    # bristly mane along the back
    for x in np.linspace(-0.2, 0.4, 9):
        px = geo["ox"] + x * L
        py = geo["top_y"](x)
        d.line([(px, py), (px - 0.03 * L, py - 0.08 * L)], fill=(50, 42, 36),
               width=max(1, int(0.015 * L)))
    te = geo["tail_end"]
    d.ellipse([te[0] - 0.03 * L, te[1] - 0.05 * L, te[0] + 0.03 * L, te[1] + 0.01 * L],
              fill=(30, 26, 24))
    _ear(d, geo, 0.1, _scale(coat, 0.85))


def _det_lion(d, body, geo, rng, coat):
    L = geo["L"]
    te = geo["tail_end"]
    d.ellipse([te[0] - 0.04 * L, te[1] - 0.04 * L, te[0] + 0.04 * L, te[1] + 0.06 * L],
              fill=(40, 30, 24))
    ne = geo["ne"]
    for dx in (-0.02, 0.06):
        c = (ne[0] + dx * L, ne[1] - geo["hh"] * 0.45)
        r = 0.04 * L
        d.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=_scale(coat, 0.85))
    m = geo["muzzle"]
    r = geo["hh"] * 0.3
    d.ellipse([m[0] - r, m[1] - r * 0.8, m[0] + r, m[1] + r * 0.8], fill=(228, 206, 170))
    d.ellipse([m[0] + r * 0.3, m[1] - r * 0.6, m[0] + r * 0.9, m[1] - r * 0.1], fill=(60, 40, 34))


def _det_hyena(d, body, geo, rng, coat):
    L = geo["L"]
    ne = geo["ne"]
    for dx in (-0.03, 0.05):
        c = (ne[0] + dx * L, ne[1] - geo["hh"] * 0.55)
        r = 0.06 * L
        d.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=_scale(coat, 0.8))
    m = geo["muzzle"]
    r = geo["hh"] * 0.3
    d.ellipse([m[0] - r, m[1] - r, m[0] + r, m[1] + r], fill=(40, 34, 30))
    d.line(_mane_line(geo, body), fill=(70, 56, 44), width=max(2, int(0.04 * L)))
    d.line([geo["tail_base"], geo["tail_end"]], fill=(40, 34, 30), width=max(2, int(0.05 * L)))


_DETAILS = {
    "zebra": _det_zebra, "wildebeest": _det_wildebeest, "gazellethomsons": _det_thomsons,
    "gazellegrants": _det_grants, "impala": _det_impala, "hartebeest": _det_hartebeest,
    "buffalo": _det_buffalo, "elephant": _det_elephant, "giraffe": _det_giraffe,
    "warthog": _det_warthog, "lionfemale": _det_lion, "hyenaspotted": _det_hyena,
}


def _draw_guineafowl(img, d, body, L, ss, ox, oy, ground, pose, rng, coat) -> Sprite:
    """Helmeted guineafowl: round dark body with white dots, small bare head, thin legs."""
    bw, bh = 0.5 * L, 0.34 * L
    cy = ground - 0.3 * L - bh / 2
    for dx in (-0.06, 0.06):
        x = ox + dx * L
        d.line([(x, cy + bh * 0.3), (x + (0.03 if pose.walking else 0) * L, ground)],
               fill=(110, 100, 90), width=max(1, int(0.03 * L)))
    d.polygon(_ellipse_pts(ox, cy, bw, bh, -0.15), fill=coat)
    arr = np.asarray(img).copy()
    xs, ys = _grid(arr, dict(ox=ox, oy=cy, L=L))
    dots = (np.sin(xs * 95) > 0.75) & (np.sin(ys * 95 + 1.3 * np.floor(xs * 95 / 6.28)) > 0.75)
    _apply(arr, dots, (236, 236, 240))
    img = Image.fromarray(arr, "RGBA")
    d = ImageDraw.Draw(img)
    hx = ox + 0.42 * L
    hy = cy - (0.05 if pose.head_down else 0.28) * L
    d.line([(ox + 0.3 * L, cy - 0.1 * L), (hx, hy)], fill=(40, 44, 70), width=max(1, int(0.07 * L)))
    r = 0.07 * L
    d.ellipse([hx - r, hy - r, hx + r, hy + r], fill=(70, 110, 170))
    d.polygon([(hx - 0.02 * L, hy - r), (hx + 0.02 * L, hy - r * 2.4), (hx + 0.04 * L, hy - r)],
              fill=(180, 150, 90))
    d.ellipse([hx + r * 0.4, hy - r * 0.2, hx + r * 1.6, hy + r * 0.8], fill=(190, 40, 36))
    eye = (hx + r * 0.2, hy - r * 0.3)
    return _finish(img, ss, (ox, ground), [eye])


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Placement:
    species: str
    x: float        # foot x in frame pixels
    depth: float    # 0 (horizon) .. 1 (nearest)
    pose: Pose


@lru_cache(maxsize=1)
def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default()


def capture_light(site: Site, hour: int, rng: np.random.Generator) -> dict:
    """Per-capture lighting: exposure, colour cast, cloud shadows."""
    sun = math.sin(math.pi * (hour + 0.5 - 6) / 12) if 6 <= hour < 18 else 0.0
    gain = rng.uniform(0.85, 1.1) * (0.7 + 0.35 * max(sun, 0))
    warm = (1 - max(sun, 0)) * rng.uniform(0.03, 0.12)
    cast = np.array([1 + warm, 1.0, 1 - warm], np.float32)
    shadows = rng.uniform(0, 1, (4, 6)).astype(np.float32)
    shadow_amp = rng.uniform(0.0, 0.3) if rng.random() < 0.5 else 0.0
    tufts = [(rng.uniform(0, W), rng.uniform(10, 45) * (0.4 + site.tall_grass),
              rng.uniform(-0.3, 0.3)) for _ in range(int(8 + 40 * site.tall_grass))]
    temp = int(rng.integers(14, 36))
    return dict(gain=gain, ir_gain=rng.uniform(0.9, 1.15), cast=cast, shadows=shadows,
                shadow_amp=shadow_amp, tufts=tufts,
                temp=temp)


def render_frame(site_name: str, season: str, night: bool, light: dict,
                 placements: list[Placement], stamp: str, rng: np.random.Generator) -> Image.Image:
    """One 512x384 camera-trap frame with its animals and timestamp bar."""
    site = SITES[site_name]
    bg, near = background(site_name, season)
    img = Image.fromarray(bg.astype(np.uint8))
    near = near.copy()
    eyes: list[tuple[float, float, float]] = []
    for p in sorted(placements, key=lambda p: p.depth):
        length = REF_LEN * BODIES[p.species].size * p.depth
        spr = draw_animal(p.species, max(length, 12.0), p.pose, rng)
        sim = spr.image
        fx, fy = spr.foot
        eye_pts = spr.eyes
        if p.pose.facing < 0:
            sim = sim.transpose(Image.FLIP_LEFT_RIGHT)
            fx = sim.width - fx
            eye_pts = [(sim.width - x, y) for x, y in eye_pts]
        gy = depth_to_y(site, p.x, p.depth)
        left, top = int(round(p.x - fx)), int(round(gy - fy))
        if not night:
            _shadow(img, p.x, gy, length)
        img.paste(sim, (left, top), sim)
        _paint_depth(near, sim, left, top, p.depth)
        eyes += [(left + x, top + y, length) for x, y in eye_pts]
    _tufts(img, site, season, light, rng)
    arr = np.asarray(img).astype(np.float32)
    if night:
        arr = _infrared(arr, near, light["ir_gain"], rng)
        for ex, ey, length in eyes:  # eyeshine in the flash
            r = max(1.0, length * 0.012)
            y0, y1 = int(max(ey - r, 0)), int(min(ey + r + 1, H))
            x0, x1 = int(max(ex - r, 0)), int(min(ex + r + 1, W))
            arr[y0:y1, x0:x1] = 250
    else:
        sh = np.asarray(Image.fromarray((light["shadows"] * 255).astype(np.uint8)).resize(
            (W, H), Image.BICUBIC), np.float32) / 255.0
        shade = (1 - light["shadow_amp"] * sh * (near > 0)) * light["gain"]
        arr = arr * shade[..., None] * light["cast"]
        arr += _noise(rng, 3.0)[..., None]
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    out = Image.fromarray(arr)
    _stamp(out, stamp)
    return out


def _shadow(img: Image.Image, x: float, y: float, length: float) -> None:
    w, h = int(length * 1.2) + 2, int(length * 0.12) + 2
    sh = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    ImageDraw.Draw(sh).ellipse([0, 0, w - 1, h - 1], fill=(20, 20, 10, 70))
    img.paste(sh, (int(x - w / 2), int(y - h / 2)), sh)


def _tufts(img: Image.Image, site: Site, season: str, light: dict,
           rng: np.random.Generator) -> None:
    """Foreground grass in front of the animals, swaying a little from frame to frame."""
    d = ImageDraw.Draw(img)
    sway = rng.uniform(-2, 2)
    grass = site.grass_wet if season != "S1" else site.grass_dry
    col = _scale(grass, 0.75)
    for x, hgt, lean in light["tufts"]:
        for k in range(5):
            bx = x + k * 3 - 6
            d.line([(bx, GROUND_BOTTOM + 6), (bx + lean * hgt + sway + (k - 2) * 2,
                                              GROUND_BOTTOM + 6 - hgt)], fill=col, width=2)


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """A fixed bank of sensor noise; frames take random crops of it (cheaper than drawing)."""
    return np.random.default_rng(1234).normal(0, 1, (H + 96, W + 96)).astype(np.float32)


def _noise(rng: np.random.Generator, sigma: float) -> np.ndarray:
    bank = _noise_bank()
    y, x = int(rng.integers(0, 96)), int(rng.integers(0, 96))
    return bank[y:y + H, x:x + W] * sigma


@lru_cache(maxsize=1)
def _vignette() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    vign = 1 - 0.45 * (((xx - W / 2) / (W / 2)) ** 2 + ((yy - H * 0.7) / H) ** 2)
    return np.clip(vign, 0.3, 1)


def _paint_depth(near: np.ndarray, sprite: Image.Image, left: int, top: int,
                 depth: float) -> None:
    """Give the animal's pixels its own nearness (the infrared flash lights it as a whole)."""
    a = np.asarray(sprite)[..., 3] > 40
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + a.shape[0], H), min(left + a.shape[1], W)
    if y1 <= y0 or x1 <= x0:
        return
    sub = a[y0 - top:y1 - top, x0 - left:x1 - left]
    near[y0:y1, x0:x1][sub] = depth


def _infrared(arr: np.ndarray, near: np.ndarray, gain: float,
              rng: np.random.Generator) -> np.ndarray:
    """Greyscale infrared-flash look: bright foreground, black sky, vignette, grain."""
    lum = arr[..., 0] * 0.45 + arr[..., 1] * 0.4 + arr[..., 2] * 0.15
    flash = 0.12 + 1.05 * near ** 0.7
    lum = lum * flash * _vignette() * gain * rng.uniform(0.98, 1.02) + 8
    lum += _noise(rng, 6.0)
    return np.repeat(lum[..., None], 3, axis=2)


def _stamp(img: Image.Image, text: str) -> None:
    d = ImageDraw.Draw(img)
    d.rectangle([0, H - BAR_H, W, H], fill=(0, 0, 0))
    d.text((6, H - BAR_H + 3), text, fill=(236, 236, 236), font=_font())
