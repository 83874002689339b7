"""Render a natural-looking tower-site photo with numpy so JPEG sizes and decode costs are realistic.

A flat or purely random image would compress far better or far worse than a real drone photo; a sky
gradient with clouds, textured ground, a lattice tower with sharp edges and sensor grain lands at
DJI-like sizes (about 6-7 MB for 4000x3000 at quality 92, 4:2:2 chroma like DJI firmware).
"""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from qc_tool.demo.segments import strip_app_segments

Rng = np.random.Generator
Plane = NDArray[np.float32]


def _octave(rng: Rng, width: int, height: int, cell: int) -> Plane:
    """Smooth value noise in [0, 1]: a coarse random grid upsampled bicubically."""
    cell = max(2, cell)
    grid = rng.random((height // cell + 3, width // cell + 3), dtype=np.float32)
    big = Image.fromarray(grid, mode="F").resize(
        ((width // cell + 3) * cell, (height // cell + 3) * cell), Image.Resampling.BICUBIC
    )
    return np.asarray(big)[cell : cell + height, cell : cell + width]


def _background(rng: Rng, width: int, height: int, horizon: int) -> NDArray[np.uint8]:
    img = np.empty((height, width, 3), np.float32)
    t = np.linspace(0.0, 1.0, horizon, dtype=np.float32)[:, None, None]
    zenith = np.array([62, 118, 192], np.float32)
    haze = np.array([178, 202, 226], np.float32)
    clouds = _octave(rng, width, horizon, width // 10) * 0.6
    clouds += _octave(rng, width, horizon, width // 50) * 0.3
    clouds += _octave(rng, width, horizon, width // 300) * 0.1
    cover = np.clip((clouds - 0.42) * 2.4, 0.0, 1.0)[..., None]
    img[:horizon] = (zenith * (1 - t) + haze * t) * (1 - cover) + 236.0 * cover

    ground_h = height - horizon
    grass = np.array([88, 108, 62], np.float32)
    gravel = np.array([146, 128, 102], np.float32)
    patches = _octave(rng, width, ground_h, width // 6)[..., None]
    shade = 0.45 + _octave(rng, width, ground_h, width // 40) * 0.35
    shade += _octave(rng, width, ground_h, width // 250) * 0.35
    shade += _octave(rng, width, ground_h, 2) - 0.5  # gravel-scale detail: most of the JPEG bits
    img[horizon:] = (grass * (1 - patches) + gravel * patches) * shade[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw_site(canvas: Image.Image, rng: Rng, horizon: int) -> None:
    """Draw a lattice tower with antennas, a cabinet and a fence: strong edges at several angles."""
    width, height = canvas.size
    draw = ImageDraw.Draw(canvas)
    unit = max(1, width // 400)
    cx = int(width * rng.uniform(0.35, 0.65))
    top, base = int(height * 0.06), int(height * 0.86)
    half_base, half_top = int(width * 0.07), int(width * 0.012)
    steel = (int(rng.integers(150, 190)),) * 3

    def leg_x(side: int, y: float) -> float:
        frac = (y - top) / (base - top)
        return cx + side * (half_top + (half_base - half_top) * frac)

    fence_y = int(horizon + (height - horizon) * 0.15)
    draw.line([(0, fence_y), (width, fence_y + height * 0.03)], fill=(110, 110, 105), width=unit)
    for x in range(0, width, max(4, width // 40)):
        y = fence_y + height * 0.03 * x / width
        draw.line([(x, y - height * 0.04), (x, y)], fill=(120, 118, 112), width=unit)
    for side in (-1, 1):
        draw.line([(leg_x(side, top), top), (leg_x(side, base), base)], fill=steel, width=3 * unit)
    levels = 14
    for i in range(levels):
        y0 = top + (base - top) * i / levels
        y1 = top + (base - top) * (i + 1) / levels
        draw.line([(leg_x(-1, y1), y1), (leg_x(1, y1), y1)], fill=steel, width=unit)
        draw.line([(leg_x(-1, y0), y0), (leg_x(1, y1), y1)], fill=steel, width=unit)
        draw.line([(leg_x(1, y0), y0), (leg_x(-1, y1), y1)], fill=steel, width=unit)
    for k in range(6):  # antenna panels around the top platform
        px, py = cx + (k - 2.5) * width * 0.012, top + height * 0.02
        panel = (225, 225, 220) if k % 2 else (200, 200, 196)
        draw.rectangle([px - 4 * unit, py, px + 4 * unit, py + height * 0.07], fill=panel)
    cab_x = int(width * rng.uniform(0.08, 0.25))
    cab_y = int(horizon + (height - horizon) * 0.35)
    draw.rectangle(
        [cab_x, cab_y, cab_x + width * 0.08, cab_y + height * 0.12], fill=(196, 198, 190)
    )
    draw.rectangle([cab_x, cab_y, cab_x + width * 0.08, cab_y + height * 0.01], fill=(60, 62, 60))


def render_scene(width: int, height: int, seed: int) -> NDArray[np.uint8]:
    """The RGB pixels of a synthetic tower-site photo, deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    horizon = int(height * rng.uniform(0.3, 0.42))
    canvas = Image.fromarray(_background(rng, width, height, horizon))
    _draw_site(canvas, rng, horizon)
    pixels = np.asarray(canvas).astype(np.int16)
    # Sensor grain, stronger in the textured ground than in the smooth sky, plus a little chroma
    # noise: tuned so a 4000x3000 body at quality 92 is about 6.5 MB, like a DJI FC6310 JPEG.
    sigma = np.full((height, 1, 1), 14.0, np.float32)
    sigma[:horizon] = 5.0
    pixels += (rng.standard_normal((height, width, 1), dtype=np.float32) * sigma).astype(np.int16)
    pixels += (rng.standard_normal((height, width, 3), dtype=np.float32) * 5.0).astype(np.int16)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def encode_jpeg(width: int, height: int, seed: int, quality: int = 90) -> bytes:
    """A complete baseline JPEG (SOI..EOI, no APPn) of a rendered scene."""
    return b"\xff\xd8" + encode_body(width, height, seed, quality)


def encode_body(width: int, height: int, seed: int, quality: int = 90) -> bytes:
    """JPEG-encode a rendered scene; return everything after SOI minus Pillow's APPn segments."""
    buffer = io.BytesIO()
    image = Image.fromarray(render_scene(width, height, seed))
    image.save(buffer, "JPEG", quality=quality, subsampling=1)  # 4:2:2 like DJI firmware
    return strip_app_segments(buffer.getvalue())
