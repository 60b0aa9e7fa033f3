"""The learning-rate range test's plot, drawn with PIL (no matplotlib in this project)."""
from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

W, H, PAD = 640, 400, 56


def save_lr_plot(lrs: list[float], losses: list[float], suggestion: float, path: str | Path,
                 *, title: str = "learning-rate range test") -> Path:
    """Loss against log10(LR) with the suggested LR marked; written as a PNG."""
    pts = [(math.log10(lr), loss) for lr, loss in zip(lrs, losses) if math.isfinite(loss)]
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    d.text((PAD, 12), title, fill="black")
    d.rectangle((PAD, PAD, W - 16, H - PAD), outline="black")
    if len(pts) >= 2:
        x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
        y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
        y1 = min(y1, y0 + 4 * max(abs(y0), 1e-3))  # keep the blow-up from flattening the curve
        x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

        def xy(x: float, y: float) -> tuple[float, float]:
            y = min(y, y1)
            return (PAD + (x - x0) / (x1 - x0) * (W - 16 - PAD),
                    H - PAD - (y - y0) / (y1 - y0) * (H - 2 * PAD))

        d.line([xy(*p) for p in pts], fill=(31, 119, 180), width=2)
        for e in range(math.ceil(x0), math.floor(x1) + 1):
            x = xy(e, y0)[0]
            d.line((x, H - PAD, x, H - PAD + 5), fill="black")
            d.text((x - 14, H - PAD + 8), f"1e{e}", fill="black")
        for y in (y0, (y0 + y1) / 2, y1):
            d.text((4, xy(x0, y)[1] - 6), f"{y:.3g}", fill="black")
        sx = xy(math.log10(suggestion), y0)[0]
        d.line((sx, PAD, sx, H - PAD), fill=(214, 39, 40), width=1)
        d.text((min(sx + 4, W - 150), PAD + 4), f"suggested {suggestion:.2g}", fill=(214, 39, 40))
    d.text((W // 2 - 40, H - 20), "learning rate (log)", fill="black")
    d.text((4, PAD - 20), "loss", fill="black")
    path = Path(path)
    img.save(path)
    return path
