"""The photo sources added for default model v2: scratch, tuxpaint-stamps-default, stellarium-data.

* ``scratch`` 1.4 (MIT's Scratch 1.4): its background photographs (``Media/Backgrounds``), picked by
  eye; drawings, murals and graffiti left out. CC-BY-SA-3.0 ("Files: Help/* Media/* Projects").
* ``tuxpaint-stamps-default`` 2022.06.04: photo cut-outs (PNG with transparency, no SVG twin, not in
  a ``cartoon`` folder) of
  animals, food, plants and household objects; drawings are left out automatically (few distinct
  colours, see :func:`looks_like_photo`). Each is cropped to the object with a margin and composited
  onto a strongly blurred photograph of the training-eligible wallpaper / GCompris sources (chosen by
  a hash of the id), so it looks like a close-up with a defocused background. GPL-2.
* ``stellarium-data`` 0.22: the photographic landscape panoramas (Garching, Hurricane Ridge); each
  texture strip is cut to its fully opaque rows (the sky is transparent). GPL-2+ ("Files: *").

Looked at and not used: ``ukui-wallpapers`` (all twelve wallpapers are vector or 3D art) and
``jigzo-data`` (its puzzles hold only a 232x176 preview photo and a texture atlas of pieces).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

SCRATCH_DIR = "usr/share/scratch/Media/Backgrounds"
SCRATCH_PHOTOS = {
    "Indoors": ("clothing-store", "hall", "kitchen", "the-movies-inside"),
    "Nature": (
        "beach-malibu",
        "canyon",
        "flower-bed",
        "forest",
        "garden-rock",
        "grand-canyon",
        "gravel-desert",
        "hill",
        "lake",
        "moon",
        "pathway",
        "tree",
        "water-and-rocks",
        "wave",
    ),  # fmt: skip
    "Outdoors": (
        "atom-playground",
        "bench-with-view",
        "boardwalk",
        "brick-wall-and-stairs",
        "building-at-mit",
        "building-fireproof",
        "castle",
        "city-with-water",
        "city-with-water2",
        "driveway",
        "hallway_outdoors",
        "hay_field",
        "houses",
        "mansion",
        "parking-ramp",
        "pool",
        "route66",
        "silos",
        "the-movies",
        "train-tracks1",
        "train-tracks2",
        "village",
        "wooden-house",
    ),  # fmt: skip
    "Sports": (
        "baseball-field",
        "basketball-court1-b",
        "football-field",
        "playing-field",
        "tennis-backboard",
    ),
}
SCRATCH_GIF_PHOTOS = ("Nature/flowers.gif",)
TUX_DIR = "usr/share/tuxpaint/stamps"
TUX_CATEGORIES = ("animals", "food", "plants", "household")
TUX_MIN_DISTINCT = 0.12  # distinct colours / opaque pixels (64 px copy) below which a stamp is a drawing
TUX_CANVAS = 512  # pixels: longest side of a composited stamp
STELLARIUM_DIR = "usr/share/stellarium/landscapes"
STELLARIUM_TILES = {
    "garching": ("Fabien Chéreau", [f"garching-gl{i}.png" for i in range(1, 5)]),
    "hurricane": ("Johan Meuris and Robert Spearman", [f"hurricane{i}.png" for i in range(1, 9)]),
}
LICENCES = {
    "scratch": ("Copyright (c) 2011 Massachusetts Institute of Technology", "CC-BY-SA-3.0"),
    "tuxpaint-stamps-default": ("2002-2022 by Bill Kendrick <bill@newbreedsoftware.com>", "GPL-2"),
    "stellarium-data": ("(C) 2002-2014 Fabien Chéreau et al.", "GPL-2+ (the copyright file's 'Files: *')"),
}
BACKGROUND_PACKAGES = ("lomiri-", "plasma-", "gcompris-")  # id prefixes whose photos may back a stamp


def scratch_candidates() -> list[tuple[str, str, str]]:
    """(id, package, path) of the scratch background photographs."""
    out = [
        (f"scratch-{name}", "scratch", f"{SCRATCH_DIR}/{folder}/{name}.jpg")
        for folder, names in SCRATCH_PHOTOS.items()
        for name in names
    ]
    out += [(f"scratch-{Path(p).stem}", "scratch", f"{SCRATCH_DIR}/{p}") for p in SCRATCH_GIF_PHOTOS]
    return out


def looks_like_photo(rgba: Image.Image) -> bool:
    """A cut-out photo has many distinct colours; a flat-shaded drawing few (on a 64 px copy)."""
    small = np.asarray(rgba.convert("RGBA").resize((64, 64), Image.Resampling.BILINEAR))
    opaque = small[small[..., 3] > 250][:, :3]
    if len(opaque) < 200:
        return False
    return len(np.unique(opaque // 4, axis=0)) / len(opaque) >= TUX_MIN_DISTINCT


def tuxpaint_candidates(raw: Path) -> list[tuple[str, str, str]]:
    """(id, package, path) of the tuxpaint stamps that look like photographs."""
    root = raw / "tuxpaint-stamps-default" / TUX_DIR
    out = []
    for category in TUX_CATEGORIES:
        for png in sorted((root / category).rglob("*.png")):
            rel = png.relative_to(raw / "tuxpaint-stamps-default").as_posix()
            if (
                "/cartoon/" in rel
                or png.stem.endswith(("_mirror", "_flip"))
                or png.with_suffix(".svg").exists()
            ):
                continue
            if looks_like_photo(Image.open(png)):
                out.append((f"tux-{category}-{png.stem}", "tuxpaint-stamps-default", rel))
    return out


def stellarium_candidates() -> list[tuple[str, str, str]]:
    """(id, package, path) of the photographic panorama strips."""
    return [
        (f"stellarium-{Path(tile).stem}", "stellarium-data", f"{STELLARIUM_DIR}/{name}/{tile}")
        for name, (_, tiles) in STELLARIUM_TILES.items()
        for tile in tiles
    ]


def describe(package: str, path: str) -> tuple[str, str, str]:
    """(shown path, author, licence) of a candidate of these packages."""
    holders, licence = LICENCES[package]
    if package == "stellarium-data":
        holders = f"{STELLARIUM_TILES[path.split('/')[-2]][0]}; {holders}"
    return f"/{path}", holders, licence


def opaque_band(rgba: Image.Image) -> Image.Image:
    """The widest run of fully opaque rows of a panorama strip (ground; the sky is transparent)."""
    alpha = np.asarray(rgba.convert("RGBA"))[..., 3]
    full = (alpha >= 255).mean(axis=1) >= 0.999
    best, start = (0, 0), None
    for y, ok in enumerate([*full, False]):
        if ok and start is None:
            start = y
        elif not ok and start is not None:
            best, start = max(best, (y - start, start)), None
    height, top = best
    return rgba.convert("RGB").crop((0, top, rgba.width, top + height))


def composite_stamp(ident: str, rgba: Image.Image, backgrounds: list[Path]) -> Image.Image:
    """The stamp cropped to its object (25 % margin) over a blurred photo chosen by a hash of ``ident``."""
    rgba = rgba.convert("RGBA")
    left, top, right, bottom = rgba.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
    mx, my = (right - left) // 4, (bottom - top) // 4
    canvas = Image.new("RGBA", (right - left + 2 * mx, bottom - top + 2 * my))
    canvas.paste(rgba.crop((left, top, right, bottom)), (mx, my))
    scale = TUX_CANVAS / max(canvas.size)
    canvas = canvas.resize(
        (round(canvas.width * scale), round(canvas.height * scale)), Image.Resampling.LANCZOS
    )
    pick = backgrounds[zlib.crc32(ident.encode()) % len(backgrounds)]
    back = Image.open(pick).convert("RGB")
    cover = max(canvas.width / back.width, canvas.height / back.height)
    back = back.resize(
        (max(canvas.width, round(back.width * cover)), max(canvas.height, round(back.height * cover)))
    )
    back = back.crop((0, 0, *canvas.size)).filter(ImageFilter.GaussianBlur(radius=12))
    back.paste(canvas, (0, 0), canvas)
    return back
