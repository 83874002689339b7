"""Deterministic synthetic drone photos for the check tests: scenes, camera defects, JPEG bytes.

Each scene is drawn at twice the size and box-reduced (so edges are anti-aliased like a real
sensor), then given the camera's mild optical softness; defects are applied before the noise and
the JPEG encoding, as they would be in a camera.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# The camera's defects live with the site generator, which gives generated sites the same ones.
from qc_tool.demo.defects import Defects, photograph, reencode

__all__ = ["KINDS", "Defects", "encode_jpeg", "photograph", "reencode", "render_scene", "shot"]

KINDS = ("tower_sky", "wall", "nadir", "water")

# A 3x3 Gaussian of sigma ~0.5 px: the optical softness of a good drone camera.
_G = (0.107, 0.786, 0.107)
_LENS = ImageFilter.Kernel((3, 3), [a * b for a in _G for b in _G], scale=1.0)

Size = tuple[int, int]


def _noise_field(rng: np.random.Generator, size: Size, octaves: int, rough: float) -> np.ndarray:
    """1/f-like noise in [-1, 1]: from the coarsest grid down, upsample x2 and add finer noise."""
    w, h = size
    scale = 2 ** (octaves - 1)
    weight = rough ** (octaves - 1)
    total = weight * rng.standard_normal((max(2, h // scale), max(2, w // scale)), np.float32)
    norm = weight
    for level in range(octaves - 2, -1, -1):
        step = 2**level
        shape = (max(2, h // step), max(2, w // step))
        img = Image.fromarray(total, mode="F").resize(shape[::-1], Image.Resampling.BILINEAR)
        weight /= rough
        total = np.asarray(img) + weight * rng.standard_normal(shape, np.float32)
        norm += weight
    field: np.ndarray = np.clip(total / norm / 1.2, -1.0, 1.0)
    return field


def _colour_layer(base: tuple[int, int, int], field: np.ndarray, amp: float) -> np.ndarray:
    """An RGB layer: a base colour modulated by a noise field (amp in grey levels)."""
    rgb = np.asarray(base, dtype=np.float32)[None, None, :] + amp * field[:, :, None]
    return rgb


def _sky(rng: np.random.Generator, size: Size) -> np.ndarray:
    w, h = size
    top = np.array([120, 160, 215], dtype=np.float32) * rng.uniform(0.9, 1.05)
    bottom = np.array([190, 205, 225], dtype=np.float32) * rng.uniform(0.9, 1.02)
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    sky = top * (1 - t) + bottom * t
    clouds = _noise_field(rng, size, 6, 2.2)  # coarse octaves dominate: soft clouds
    out: np.ndarray = np.broadcast_to(sky, (h, w, 3)) + 18.0 * np.clip(clouds, 0, 1)[:, :, None]
    return out


def _ground(rng: np.random.Generator, size: Size) -> np.ndarray:
    base = (int(rng.integers(70, 130)), int(rng.integers(90, 140)), int(rng.integers(50, 100)))
    return _colour_layer(base, _noise_field(rng, size, 6, rng.uniform(0.9, 1.3)), 45.0)


def _base(kind: str, rng: np.random.Generator, size: Size) -> tuple[np.ndarray, int]:
    """The background layers of a scene, and the row where the horizon (if any) sits."""
    w, h = size
    if kind == "tower_sky":
        horizon = int(h * rng.uniform(0.55, 0.85))  # 55-85 % of the frame is sky
        img = _ground(rng, size)
        img[:horizon] = _sky(rng, (w, horizon))
        return img, horizon
    if kind == "wall":
        grey = int(rng.integers(150, 190))
        img = _colour_layer((grey, grey - 5, grey - 12), _noise_field(rng, size, 3, 3.0), 4.0)
        ground_top = int(h * rng.uniform(0.85, 0.95))
        img[ground_top:] = _ground(rng, (w, h - ground_top))
        return img, 0
    if kind == "water":
        shore = int(h * rng.uniform(0.25, 0.4))
        img = _colour_layer((40, 70, 95), _noise_field(rng, size, 5, 2.5), 10.0)
        img[:shore] = _ground(rng, (w, shore))
        return img, 0
    return _ground(rng, size), 0


def _draw_tower(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int) -> None:
    """A lattice tower: two legs, cross bracing and a few antenna panels (drawn at 2x)."""
    cx = rng.uniform(0.3, 0.7) * w
    base_half, top_half = rng.uniform(0.06, 0.12) * w, rng.uniform(0.015, 0.03) * w
    top, bottom = rng.uniform(0.02, 0.1) * h, h * 1.02
    shade = int(rng.integers(40, 90))
    col = (shade, shade, shade + 5)
    leg = max(3, int(w * 0.004))
    left = [(cx - base_half, bottom), (cx - top_half, top)]
    right = [(cx + base_half, bottom), (cx + top_half, top)]
    draw.line(left, fill=col, width=leg)
    draw.line(right, fill=col, width=leg)
    sections = int(rng.integers(6, 11))
    for i in range(sections):
        f0, f1 = i / sections, (i + 1) / sections
        y0, y1 = bottom + (top - bottom) * f0, bottom + (top - bottom) * f1
        hw0 = base_half + (top_half - base_half) * f0
        hw1 = base_half + (top_half - base_half) * f1
        draw.line([(cx - hw0, y0), (cx + hw1, y1)], fill=col, width=max(2, leg // 2))
        draw.line([(cx + hw0, y0), (cx - hw1, y1)], fill=col, width=max(2, leg // 2))
        draw.line([(cx - hw1, y1), (cx + hw1, y1)], fill=col, width=max(2, leg // 2))
    for _ in range(int(rng.integers(3, 7))):
        px = cx + rng.uniform(-2.5, 2.5) * top_half
        py = top + rng.uniform(0.0, 0.15) * h
        pw, ph = rng.uniform(0.008, 0.015) * w, rng.uniform(0.04, 0.07) * h
        grey = int(rng.integers(170, 235))
        draw.rectangle([px, py, px + pw, py + ph], fill=(grey, grey, grey), outline=col)


def _draw_clutter(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int, y_min: float
) -> None:
    """Buildings, roads, cabinets and cables: hard edges at many scales below y_min."""
    for _ in range(int(rng.integers(8, 20))):
        x0, y0 = rng.uniform(0, w), rng.uniform(y_min, h)
        bw, bh = rng.uniform(0.01, 0.15) * w, rng.uniform(0.01, 0.1) * h
        r, g, b = (int(v) for v in rng.integers(30, 230, size=3))
        draw.rectangle([x0, y0, x0 + bw, y0 + bh], fill=(r, g, b))
    for _ in range(int(rng.integers(3, 9))):
        pts = [(rng.uniform(0, w), rng.uniform(y_min, h)) for _ in range(2)]
        grey = int(rng.integers(20, 240))
        draw.line(pts, fill=(grey, grey, grey), width=int(rng.integers(2, 8)))


def _draw_wall_details(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int) -> None:
    """A few small features on a plain wall: a door, a sign, bolts and a cable."""
    x0 = rng.uniform(0.05, 0.6) * w
    draw.rectangle([x0, 0.35 * h, x0 + 0.12 * w, 0.9 * h], outline=(60, 60, 60), width=6)
    sx, sy = rng.uniform(0.6, 0.85) * w, rng.uniform(0.1, 0.3) * h
    draw.rectangle([sx, sy, sx + 0.08 * w, sy + 0.06 * h], fill=(220, 200, 40))
    draw.text((sx + 10, sy + 10), "DANGER 400V", fill=(0, 0, 0))
    for i in range(int(rng.integers(4, 10))):
        bx, by = rng.uniform(0, w), rng.uniform(0, 0.8 * h)
        draw.ellipse([bx, by, bx + 10, by + 10], fill=(90, 90, 90))
        if i == 0:
            draw.line([(0, by), (w, by + rng.uniform(-50, 50))], fill=(25, 25, 25), width=5)


def render_scene(seed: int, size: Size = (1000, 750), kind: str | None = None) -> np.ndarray:
    """A sharp, well-exposed scene as float RGB (0-255), deterministic for a seed."""
    rng = np.random.default_rng(seed)
    kind = kind or KINDS[seed % len(KINDS)]
    w, h = size
    base, horizon = _base(kind, rng, size)
    # Nearest-neighbour x2 then a 2x2 box reduce gives the background back exactly; only the
    # shapes drawn at x2 in between come out anti-aliased.
    big = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB").resize(
        (2 * w, 2 * h), Image.Resampling.NEAREST
    )
    draw = ImageDraw.Draw(big)
    if kind == "wall":
        _draw_wall_details(draw, rng, 2 * w, 2 * h)
    else:
        _draw_clutter(draw, rng, 2 * w, 2 * h, 2 * horizon)
        if kind != "nadir":
            _draw_tower(draw, rng, 2 * w, 2 * h)
    small = big.reduce(2).filter(_LENS)  # the lens is never perfect
    return np.asarray(small, dtype=np.float32)


def encode_jpeg(rgb: np.ndarray | Image.Image, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB array or image."""
    img = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb, "RGB")
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def shot(
    seed: int,
    defects: Defects = Defects(),  # noqa: B008 (a frozen dataclass: one shared default is safe)
    size: Size = (1000, 750),
    quality: int = 90,
) -> bytes:
    """One synthetic photo as JPEG bytes."""
    return encode_jpeg(photograph(render_scene(seed, size), defects, seed), quality)
