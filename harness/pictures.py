"""Real MNIST test digits turned into the pictures people upload: a seeded corpus, one condition at a time.

Each condition starts from the same page, a 28x28 MNIST digit drawn as dark ink on light paper at a
random size and place on a page of 100-2000 px, and changes one thing about how the world degrades
it; `combined` applies them all at once. `canvas` is a browser drawing (transparent PNG) and `fonts`
sets the digit's label in a TrueType font instead of using the handwritten one. The same seed
gives the same bytes.
"""

import io
import string
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy import ndimage

# Debian's packages fonts-dejavu-core, fonts-liberation, fonts-freefont-ttf, fonts-noto-mono and
# fonts-urw-base35: sans, serif and monospaced faces, regular and bold.
FONT_FILES = (
    "truetype/dejavu/DejaVuSans.ttf",
    "truetype/dejavu/DejaVuSans-Bold.ttf",
    "truetype/dejavu/DejaVuSerif.ttf",
    "truetype/dejavu/DejaVuSansMono.ttf",
    "truetype/liberation/LiberationSans-Regular.ttf",
    "truetype/liberation/LiberationSans-Bold.ttf",
    "truetype/liberation/LiberationSerif-Regular.ttf",
    "truetype/liberation/LiberationMono-Regular.ttf",
    "truetype/freefont/FreeSans.ttf",
    "truetype/freefont/FreeSerif.ttf",
    "truetype/freefont/FreeMono.ttf",
    "truetype/noto/NotoMono-Regular.ttf",
    "opentype/urw-base35/NimbusSans-Regular.otf",
    "opentype/urw-base35/URWGothic-Book.otf",
    "opentype/urw-base35/C059-Roman.otf",
    "opentype/urw-base35/P052-Roman.otf",
)
FONT_ROOT = Path("/usr/share/fonts")


@dataclass(frozen=True)
class Picture:
    data: bytes
    label: int
    condition: str

    @property
    def media_type(self) -> str:
        return "image/jpeg" if self.data.startswith(b"\xff\xd8") else "image/png"


@dataclass
class Page:
    """A page being made: the digit's ink (1 = ink) placed on paper, and how it will be painted."""

    ink: np.ndarray  # (H, W) float in [0, 1]
    box: tuple[int, int, int, int]  # top, left, bottom, right of the digit's frame on the page
    paper: np.ndarray  # (3,) RGB of the paper, 0-255
    ink_colour: np.ndarray  # (3,) RGB of the ink
    shading: np.ndarray | None = None  # (H, W) grey levels subtracted from the page (light and shadow)
    noise: float = 0.0  # sd of sensor noise, grey levels
    blur: float = 0.0  # Gaussian blur radius in pixels
    quality: int = 92  # JPEG quality, as phones save


def _upscaled(digit: np.ndarray, side: int) -> np.ndarray:
    frame = Image.fromarray(digit).resize((side, side), Image.BICUBIC)
    return np.asarray(frame, np.float32) / 255


def _pen(ink: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """A thinner or thicker pen: erode or dilate the strokes by up to about one MNIST pixel."""
    reach = max(1, round(rng.uniform(0.3, 0.8) * side / 28))
    size = 2 * reach + 1
    # scipy's filters equal Pillow's MinFilter and MaxFilter here (edges repeated), in time linear in
    # the window's side rather than in its area
    thinner = rng.random() < 0.5
    codes = (ink * 255).astype(np.uint8)
    pressed = (ndimage.minimum_filter if thinner else ndimage.maximum_filter)(codes, size=size, mode="nearest")
    return pressed.astype(np.float32) / 255


def _geometry(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotation up to 15 degrees and a mild perspective (a phone held not quite square)."""
    image = Image.fromarray((ink * 255).astype(np.uint8))
    image = image.rotate(rng.uniform(-15, 15), Image.BICUBIC)
    side = image.width
    shift = side * 0.08
    corners = [(0, 0), (side, 0), (side, side), (0, side)]
    moved = [(x + rng.uniform(-shift, shift), y + rng.uniform(-shift, shift)) for x, y in corners]
    image = image.transform(image.size, Image.PERSPECTIVE, _perspective(corners, moved), Image.BICUBIC)
    return np.asarray(image, np.float32) / 255


def _perspective(source: list, target: list) -> list[float]:
    """Pillow's 8 coefficients mapping output (source) corners to input (target) corners."""
    rows = []
    for (x, y), (u, v) in zip(source, target, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    return np.linalg.solve(np.array(rows), np.array(target).reshape(8)).tolist()


def _page(digit: np.ndarray, rng: np.random.Generator) -> Page:
    """The digit as dark ink at a random size and place on light paper of 100-2000 px."""
    width, height = (int(np.exp(rng.uniform(np.log(100), np.log(2000)))) for _ in range(2))
    short = min(width, height)
    side = max(28, int(short * rng.uniform(0.3, 0.9)))
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    ink = np.zeros((height, width), np.float32)
    ink[top : top + side, left : left + side] = _upscaled(digit, side)
    grey_paper, grey_ink = rng.uniform(200, 250), rng.uniform(0, 70)
    return Page(
        ink, (top, left, top + side, left + side), np.full(3, grey_paper, np.float32), np.full(3, grey_ink, np.float32)
    )


def _render(page: Page) -> np.ndarray:
    """(H, W, 3) uint8: paper and ink mixed by the ink's coverage, then light, blur and noise."""
    ink = page.ink[..., None]
    pixels = page.paper * (1 - ink) + page.ink_colour * ink
    if page.shading is not None:
        pixels = pixels - page.shading[..., None]
    if page.blur:
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(page.blur))
        pixels = np.asarray(image, np.float32)
    if page.noise:
        noise = np.random.default_rng(int(page.ink.sum())).standard_normal(pixels.shape, np.float32)
        pixels = pixels + noise * np.float32(page.noise)
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def _jpeg(page: Page) -> bytes:
    out = io.BytesIO()
    Image.fromarray(_render(page)).save(out, format="JPEG", quality=page.quality)
    return out.getvalue()


def _shading(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Light falling off across the page, and a soft shadow: up to 100 grey levels darker in all."""
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    along = (np.cos(angle) * columns / width + np.sin(angle) * rows / height) / 2 + 0.5
    gradient = rng.uniform(30, 60) * along
    edge_angle = rng.uniform(0, 2 * np.pi)
    distance = np.cos(edge_angle) * (columns - width / 2) + np.sin(edge_angle) * (rows - height / 2)
    softness = max(height, width) * 0.05
    shadow = rng.uniform(20, 40) / (1 + np.exp(-distance / softness))
    return (gradient + shadow).astype(np.float32)


def _specks(page: Page, rng: np.random.Generator) -> None:
    """Dust, specks and a few small blobs, away from the digit. Sizes are relative to the digit's frame:
    a blob is at most a tenth of the frame across, whatever the page's shape."""
    height, width = page.ink.shape
    top, left, bottom, right = page.box
    margin = (bottom - top) // 8
    scale = bottom - top
    for _ in range(int(rng.integers(3, 30))):
        radius = scale * (rng.uniform(0.004, 0.015) if rng.random() < 0.8 else rng.uniform(0.02, 0.05))
        y, x = rng.uniform(0, height), rng.uniform(0, width)
        if (
            top - margin - radius < y < bottom + margin + radius
            and left - margin - radius < x < right + margin + radius
        ):
            continue
        y0, y1 = int(max(0, y - radius - 1)), int(min(height, y + radius + 2))
        x0, x1 = int(max(0, x - radius - 1)), int(min(width, x + radius + 2))
        rows, columns = np.mgrid[y0:y1, x0:x1]
        blob = np.clip(radius + 0.5 - np.hypot(rows - y, columns - x), 0, 1) * rng.uniform(0.5, 1)
        page.ink[y0:y1, x0:x1] = np.maximum(page.ink[y0:y1, x0:x1], blob)


def _ruled(page: Page, rng: np.random.Generator) -> None:
    """Faint ruled or squared paper: lines 15-50 grey levels darker than the paper."""
    height, width = page.ink.shape
    spacing = max(8, int((page.box[2] - page.box[0]) * rng.uniform(0.25, 0.6)))
    strength = rng.uniform(15, 50) / max(1.0, float(page.paper.mean() - page.ink_colour.mean()))
    thickness = max(1, round(max(height, width) / 800))
    lines = np.zeros_like(page.ink)
    offset = int(rng.integers(0, spacing))
    for y in range(offset, height, spacing):
        lines[y : y + thickness] = strength
    if rng.random() < 0.5:
        for x in range(offset, width, spacing):
            lines[:, x : x + thickness] = strength
    page.ink = np.maximum(page.ink, lines)


def _coloured(page: Page, rng: np.random.Generator) -> None:
    """Blue, black, red or green ink on white, cream, yellow, blue or grey paper."""
    inks = [(20, 40, 160), (30, 30, 35), (170, 25, 30), (20, 110, 50)]
    papers = [(250, 250, 248), (245, 235, 200), (250, 240, 150), (205, 225, 245), (215, 215, 215)]
    page.ink_colour = np.array(inks[rng.integers(len(inks))], np.float32)
    page.paper = np.array(papers[rng.integers(len(papers))], np.float32)


def _placed_ink(page: Page, frame: np.ndarray) -> None:
    top, left, bottom, right = page.box
    page.ink[top:bottom, left:right] = frame


def _noisy(page: Page, rng: np.random.Generator) -> None:
    page.noise = rng.uniform(5, 20)


def _compressed(page: Page, rng: np.random.Generator) -> None:
    page.quality = int(rng.integers(40, 96))


def _blurred(page: Page, rng: np.random.Generator) -> None:
    page.blur = (page.box[2] - page.box[0]) / 28 * rng.uniform(0.3, 1.0)


def _lit(page: Page, rng: np.random.Generator) -> None:
    page.shading = _shading(*page.ink.shape, rng)


def _frame(page: Page) -> np.ndarray:
    top, left, bottom, right = page.box
    return page.ink[top:bottom, left:right]


def _other_pen(page: Page, rng: np.random.Generator) -> None:
    _placed_ink(page, _pen(_frame(page), page.box[2] - page.box[0], rng))


def _turned(page: Page, rng: np.random.Generator) -> None:
    _placed_ink(page, _geometry(_frame(page), rng))


PageChange = Callable[[Page, np.random.Generator], None]


def photographed(*changes: PageChange) -> Callable[[np.ndarray, np.random.Generator], bytes]:
    """A condition: the digit on a page, changed in these ways, saved as a phone saves it."""

    def make(digit: np.ndarray, rng: np.random.Generator) -> bytes:
        page = _page(digit, rng)
        for change in changes:
            change(page, rng)
        return _jpeg(page)

    return make


def combined(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    page = _page(digit, rng)
    if rng.random() < 0.5:
        _other_pen(page, rng)
    _turned(page, rng)
    _coloured(page, rng)
    _specks(page, rng)
    if rng.random() < 0.5:
        _ruled(page, rng)
    _lit(page, rng)
    page.blur = (page.box[2] - page.box[0]) / 28 * rng.uniform(0.2, 0.6)
    _noisy(page, rng)
    _compressed(page, rng)
    return _jpeg(page)


def canvas(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A drawing on a browser canvas: anti-aliased strokes of any width on a transparent background."""
    side = int(rng.uniform(150, 600))
    frame = _upscaled(digit, side)
    if rng.random() < 0.7:
        frame = _pen(frame, side, rng)
    colour = [(0, 0, 0), (20, 40, 160), (200, 30, 30)][rng.integers(3)]
    rgba = np.zeros((side, side, 4), np.uint8)
    rgba[..., :3] = colour
    rgba[..., 3] = np.round(np.clip(frame * 1.5, 0, 1) * 255)
    out = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(out, format="PNG")
    return out.getvalue()


def clean(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The MNIST digit itself, as a 28x28 PNG: the accuracy every condition is compared with."""
    out = io.BytesIO()
    Image.fromarray(digit).save(out, format="PNG")
    return out.getvalue()


def available_fonts() -> list[Path]:
    return [FONT_ROOT / name for name in FONT_FILES if (FONT_ROOT / name).exists()]


def typeset(text: str, rng: np.random.Generator, font: Path) -> bytes:
    """text (a digit, a letter) set in a font, dark on light paper, at a random size and place."""
    size = int(rng.uniform(40, 400))
    width, height = int(size * rng.uniform(1.2, 3)), int(size * rng.uniform(1.5, 3))
    image = Image.new("L", (width, height), int(rng.uniform(200, 250)))
    draw = ImageDraw.Draw(image)
    face = ImageFont.truetype(str(font), size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=face)
    x = rng.uniform(0, max(1, width - (right - left))) - left
    y = rng.uniform(0, max(1, height - (bottom - top))) - top
    draw.text((x, y), text, fill=int(rng.uniform(0, 70)), font=face)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=92)
    return out.getvalue()


NUMBER_LENGTHS = (2, 6)  # digits per number, fewest and most
SMALLEST_DIGIT = 1 / 20  # of the page's short side: the digits' written height
PITCH = (22, 28)  # MNIST pixels from one digit's frame to the next: MNIST's frames are 28 wide


@dataclass(frozen=True)
class Number:
    """A picture of a number and, left to right, its digits and where each was written."""

    data: bytes
    labels: tuple[int, ...]
    frames: tuple[tuple[int, int, int, int], ...]  # each digit's frame on the page: top, left, bottom, right


def number(digits: np.ndarray, labels: np.ndarray, rng: np.random.Generator, smallest: bool = False) -> Number:
    """Handwritten MNIST digits side by side on a page of 600-2000 px, written 1/20 to 1/5 of the
    page's short side high (or exactly 1/20, smallest) and photographed as `combined` photographs
    a digit: paper and ink colours, specks, ruled lines, light, blur, noise and JPEG."""
    width, height = (int(np.exp(rng.uniform(np.log(600), np.log(2000)))) for _ in range(2))
    share = SMALLEST_DIGIT if smallest else np.exp(rng.uniform(np.log(SMALLEST_DIGIT), np.log(1 / 5)))
    pitch = rng.uniform(*PITCH)
    scale = min(share * min(width, height) / 20, 0.95 * width / (pitch * (len(digits) - 1) + 28))  # ink: 20 of 28
    side = round(28 * scale)
    steps = [round(index * pitch * scale) for index in range(len(digits))]
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - steps[-1] - side + 1))
    ink = np.zeros((height, width), np.float32)
    for step, digit in zip(steps, digits, strict=True):
        frame = ink[top : top + side, left + step : left + step + side]
        np.maximum(frame, _upscaled(digit, side), out=frame)
    page = Page(ink, (top, left, top + side, left + steps[-1] + side), np.zeros(3), np.zeros(3))
    _coloured(page, rng)
    _specks(page, rng)
    if rng.random() < 0.5:
        _ruled(page, rng)
    _lit(page, rng)
    page.blur = side / 28 * rng.uniform(0.2, 0.6)
    _noisy(page, rng)
    _compressed(page, rng)
    frames = tuple((top, left + step, top + side, left + step + side) for step in steps)
    return Number(_jpeg(page), tuple(int(label) for label in labels), frames)


def numbers(
    images: np.ndarray, labels: np.ndarray, count: int, seed: int = 0, smallest: bool = False
) -> Iterator[Number]:
    """count numbers of 2 to 6 test digits each, taken in turn from the start; the same seed, the same bytes."""
    rng = np.random.default_rng([seed, zlib.crc32(b"numbers smallest" if smallest else b"numbers")])
    start = 0
    for _ in range(count):
        length = int(rng.integers(NUMBER_LENGTHS[0], NUMBER_LENGTHS[1] + 1))
        chosen = np.arange(start, start + length) % len(images)
        start += length
        yield number(images[chosen], labels[chosen], rng, smallest)


Condition = Callable[[np.ndarray, np.random.Generator], bytes]
CONDITIONS: dict[str, Condition] = {
    "clean": clean,
    "paper": photographed(),
    "noise": photographed(_noisy),
    "jpeg": photographed(_compressed),
    "blur": photographed(_blurred),
    "lighting": photographed(_lit),
    "colour": photographed(_coloured),
    "specks": photographed(_specks),
    "lines": photographed(_ruled),
    "pens": photographed(_other_pen),
    "geometry": photographed(_turned),
    "canvas": canvas,
    "combined": combined,
}

ALL_CONDITIONS = (*CONDITIONS, "fonts")

# The pictures issue's targets for 5-NN accuracy: each condition against the clean digits'.
CONDITION_RATIO = 0.9
COMBINED_RATIO = 0.85
FONTS_ACCURACY = 0.7


def target_for(condition: str, clean: float) -> float:
    if condition == "fonts":
        return FONTS_ACCURACY
    if condition == "combined":
        return COMBINED_RATIO * clean
    return 0.0 if condition == "clean" else CONDITION_RATIO * clean


def corpus(images: np.ndarray, labels: np.ndarray, condition: str, seed: int = 0) -> Iterator[Picture]:
    """One picture per test digit under a condition (or 'fonts'); the same seed, the same bytes."""
    rng = np.random.default_rng([seed, zlib.crc32(condition.encode())])
    if condition == "fonts":
        fonts = available_fonts()
        for index, label in enumerate(labels):
            yield Picture(typeset(str(label), rng, fonts[index % len(fonts)]), int(label), condition)
        return
    make = CONDITIONS[condition]
    for digit, label in zip(images, labels, strict=True):
        yield Picture(make(digit, rng), int(label), condition)


def typeset_letters(count: int, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """count letters, each drawn at random from a-z and A-Z, set as the typeset digits are: the
    outsiders a digit model's novelty score should refuse."""
    rng = np.random.default_rng([seed, zlib.crc32(b"letters")])
    fonts = available_fonts()
    for index in range(count):
        letter = string.ascii_letters[rng.integers(len(string.ascii_letters))]
        yield letter, typeset(letter, rng, fonts[index % len(fonts)])
