"""The preprocessing recipes: a grey picture of any size -> the 28x28 the model was trained on.

Both recipes first make the ink bright on a dark, flat background, then find the subject and frame
it the way the training data was framed:

- `digit`, MNIST's own framing (LeCun et al.): the subject is scaled to fit a 20x20 box keeping its
  aspect ratio, then placed in 28x28 with its centre of mass at the centre. Photos and scans need
  more than a fixed threshold first: the paper's level is estimated locally (light falls off and
  shadows cross the page), the residual is smoothed against sensor and JPEG noise, thresholded by
  Otsu's method with a floor above the noise, and only the connected strokes of the digit are kept
  (dust, specks and ruled lines away from it do not widen the frame). The strokes' lower quartile
  sets full ink, as MNIST's strokes are saturated, and a pen far thinner or thicker than MNIST's is
  brought to its usual width.
- `object`, Fashion-MNIST's framing (Xiao et al.): trimmed to the object, longest side scaled to
  28, centred. Objects fill the frame, so the background comes from the picture's border, and the
  object's own shading is kept, not stretched.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import cc3d
import numpy as np
from PIL import Image, ImageFilter

from contract.geometry import BOX, SIDE


class NoInk(ValueError):
    """Nothing stands out from the background: an empty page, or a picture too faint to read."""


MIN_CONTRAST = 0.15  # of full scale: weaker marks than this are paper texture, shading or noise
NOISE_FLOOR = 4.0  # a threshold at least this many noise deviations above the background
KEEP_SHARE = 0.05  # a piece at least this share of the first piece's pixels belongs to the subject...
KEEP_REACH = 0.35  # ...if it lies within this share of the subject's size from it
SPANNING = 0.98  # a piece this share of the picture's height or width across spans it
GROWTH_ROUNDS = 3
SEEDS = 5  # the pieces that reach furthest, each tried as the subject's first piece
PAPER_REACH = 2  # blocks on each side whose darkest median is the paper under a thick stroke
INK_LEVEL = 0.25  # the quantile of the strokes' levels that becomes full ink
# Stroke width, judged at FINE times the 20x20 box: MNIST's digits have a median of 7.3 px there
# (2 x area / boundary of the strokes above half ink) and half of them lie within 6.3-8.8.
FINE = 4
STROKE_WIDTH = 7.3
STROKE_BAND = (5.5, 9.5)


def border(pixels: np.ndarray) -> np.ndarray:
    """The outermost rows and columns, where the paper (or the background) is."""
    return np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])


def ink_is_dark(pixels: np.ndarray) -> bool:
    """Dark ink on light paper: the border (paper) is nearer the bright end than the dark one. The
    extremes are read from 2x2 averages, so that noise cannot outvote a small digit."""
    paper = float(np.median(border(pixels)))
    darkest, brightest = Image.fromarray(pixels.astype(np.float32), "F").reduce(2).getextrema()
    return paper - darkest > brightest - paper


def _block_background(pixels: np.ndarray) -> np.ndarray:
    """The paper's level under bright ink: medians of blocks, the darkest of each 5x5 neighbourhood
    (a block that is mostly stroke would read as paper), then interpolated back to full size."""
    height, width = pixels.shape
    block = max(4, round(max(height, width) / 16))
    rows, columns = -(-height // block), -(-width // block)
    padded = np.pad(pixels, ((0, rows * block - height), (0, columns * block - width)), mode="edge")
    blocks = padded.reshape(rows, block, columns, block).transpose(0, 2, 1, 3).reshape(rows, columns, -1)
    medians = np.pad(np.median(blocks, axis=2), PAPER_REACH, mode="edge")
    span = range(2 * PAPER_REACH + 1)
    darkest = np.min([medians[r : r + rows, c : c + columns] for r in span for c in span], axis=0)
    coarse = Image.fromarray(darkest.astype(np.float32), "F")
    return np.asarray(coarse.resize((width, height), Image.BILINEAR))


def _border_background(pixels: np.ndarray) -> float:
    return float(np.median(border(pixels)))


def _smoothed(residual: np.ndarray) -> np.ndarray:
    """A light Gaussian against sensor noise and JPEG ringing (Pillow's rank filters, such as a
    median, cost several times more)."""
    image = Image.fromarray(np.round(np.clip(residual, 0, 1) * 255).astype(np.uint8))
    image = image.filter(ImageFilter.GaussianBlur(1.2))
    return np.asarray(image, np.float32) / 255


def _noise_sd(sample: np.ndarray) -> float:
    return 1.4826 * float(np.median(np.abs(sample - np.median(sample))))


def _otsu(smoothed: np.ndarray) -> float:
    counts = np.bincount(np.round(smoothed * 255).astype(np.uint8).ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256)
    weight = np.cumsum(counts)
    mean = np.cumsum(counts * levels)
    total, grand = weight[-1], mean[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (grand * weight - total * mean) ** 2 / (weight * (total - weight))
    return float(np.nanargmax(between[:-1])) / 255


def _grown(main: int, boxes: np.ndarray, counts: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The pieces that join `main`, round by round: sizeable ones within reach of those joined."""
    kept = np.zeros(len(counts), bool)
    kept[main] = True
    sizeable = candidates & (counts >= KEEP_SHARE * counts[main])
    for _ in range(GROWTH_ROUNDS):  # a broken stroke's pieces join one by one
        top, bottom = boxes[kept, 0].min(), boxes[kept, 1].max()
        left, right = boxes[kept, 2].min(), boxes[kept, 3].max()
        reach = KEEP_REACH * max(bottom - top, right - left)
        near = (
            (boxes[:, 0] <= bottom + reach)
            & (boxes[:, 1] >= top - reach)
            & (boxes[:, 2] <= right + reach)
            & (boxes[:, 3] >= left - reach)
        )
        grown = kept | (sizeable & near)
        if (grown == kept).all():
            break
        kept = grown
    return kept


def _extent(boxes: np.ndarray) -> int:
    return int(max(boxes[:, 1].max() - boxes[:, 0].min(), boxes[:, 3].max() - boxes[:, 2].min())) + 1


def _subject(mask: np.ndarray) -> np.ndarray:
    """The subject's connected pieces. Each of the pieces that reach furthest gathers the sizeable
    pieces near it; the group that spans most is the subject (a digit broken into strokes outspans
    a blob of dust of more pixels than any one stroke). A piece that spans the whole picture is a
    ruled line or an edge of the page, never the subject."""
    labels = cc3d.connected_components(mask, connectivity=8)
    stats = cc3d.statistics(labels, no_slice_conversion=True)
    counts = stats["voxel_counts"][1:]
    if not counts.any():
        raise NoInk("no ink found: nothing in the picture stands out from its background")
    boxes = stats["bounding_boxes"][1:].astype(np.int64)  # (min row, max row, min column, max column)
    heights, widths = boxes[:, 1] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 2] + 1
    spanning = (heights >= SPANNING * mask.shape[0]) | (widths >= SPANNING * mask.shape[1])
    candidates = ~spanning if not spanning.all() else np.ones(len(counts), bool)
    reaches = np.where(candidates, np.maximum(heights, widths), 0)
    groups = [_grown(main, boxes, counts, candidates) for main in np.argsort(reaches)[::-1][:SEEDS]]
    kept = max(groups, key=lambda group: _extent(boxes[group]))
    return np.isin(labels, np.nonzero(kept)[0] + 1)


def _bounds(mask: np.ndarray) -> tuple[slice, slice]:
    rows, columns = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    return slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1)


def _resized(pixels: np.ndarray, longest: int) -> np.ndarray:
    scale = longest / max(pixels.shape)
    height, width = max(1, round(pixels.shape[0] * scale)), max(1, round(pixels.shape[1] * scale))
    return np.asarray(Image.fromarray(pixels.astype(np.float32), "F").resize((width, height), Image.LANCZOS)).clip(0, 1)


def _placed(pixels: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    """pixels in a 28x28 canvas with the point `centre` (row, column) at the canvas's centre."""
    height, width = pixels.shape
    top = int(np.clip(round(SIDE / 2 - 0.5 - centre[0]), 0, SIDE - height))
    left = int(np.clip(round(SIDE / 2 - 0.5 - centre[1]), 0, SIDE - width))
    canvas = np.zeros((SIDE, SIDE), np.float32)
    canvas[top : top + height, left : left + width] = pixels
    return np.round(canvas * 255) / np.float32(255.0)  # 8-bit, as the training images


def _centre_of_mass(pixels: np.ndarray) -> tuple[float, float]:
    total = pixels.sum()
    if not total:
        return (pixels.shape[0] - 1) / 2, (pixels.shape[1] - 1) / 2
    return pixels.sum(axis=1) @ np.arange(pixels.shape[0]) / total, pixels.sum(axis=0) @ np.arange(
        pixels.shape[1]
    ) / total


def _contrast_and_mask(residual: np.ndarray, thin: bool) -> tuple[np.ndarray, np.ndarray, float]:
    """The smoothed residual, the subject's mask, and the threshold that made it. Thin subjects
    (strokes) are a minority of the picture, whose statistics then describe the background, and
    Otsu's method splits ink from paper; a large subject is told from the border's noise alone."""
    smoothed = _smoothed(residual)
    if smoothed.max() < MIN_CONTRAST:
        raise NoInk(
            "no ink found: nothing in the picture stands out from its background "
            f"by {MIN_CONTRAST:.0%} of full scale or more"
        )
    background = smoothed if thin else border(smoothed)
    floor = NOISE_FLOOR * _noise_sd(background) + float(np.median(background))
    threshold = max(_otsu(smoothed), floor, MIN_CONTRAST / 2) if thin else max(floor, MIN_CONTRAST / 2)
    return smoothed, _subject(smoothed > threshold), threshold


def _stroke_width(ink: np.ndarray) -> float:
    strokes = ink > 0.5
    inner = np.asarray(Image.fromarray(strokes.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(3))) > 0
    return 2 * strokes.sum() / max(int((strokes & ~inner).sum()), 1)


def _even_strokes(ink: np.ndarray) -> np.ndarray:
    """A pen far thinner or thicker than MNIST's brought to its usual width (grey dilation or
    erosion at FINE resolution); widths MNIST itself has are left alone."""
    width = _stroke_width(ink)
    if STROKE_BAND[0] <= width <= STROKE_BAND[1]:
        return ink
    reach = int(np.clip(round((STROKE_WIDTH - width) / 2), -4, 4))
    if not reach:
        return ink
    kind = ImageFilter.MaxFilter if reach > 0 else ImageFilter.MinFilter
    return np.asarray(Image.fromarray(ink.astype(np.float32), "F").filter(kind(2 * abs(reach) + 1)))


def frame_digit(pixels: np.ndarray) -> np.ndarray:
    """Bright ink on a dark background (H, W) -> the MNIST-framed 28x28."""
    residual = pixels - _block_background(pixels)
    smoothed, kept, threshold = _contrast_and_mask(residual, thin=True)
    level = float(np.quantile(smoothed[kept], INK_LEVEL))
    ink = np.clip((smoothed - threshold / 2) / max(level - threshold / 2, 1e-3), 0, 1)
    near = np.asarray(Image.fromarray(kept.astype(np.uint8) * 255).filter(ImageFilter.BoxBlur(2))) > 0  # dilated
    ink = ink * near
    rows, columns = _bounds(kept)
    boxed = _resized(_even_strokes(_resized(ink[rows, columns], BOX * FINE)), BOX)
    return _placed(boxed, _centre_of_mass(boxed))


def frame_object(pixels: np.ndarray) -> np.ndarray:
    """A bright object on a dark background (H, W) -> the Fashion-MNIST-framed 28x28."""
    residual = np.clip(pixels - _border_background(pixels), 0, 1)
    _, kept, _ = _contrast_and_mask(residual, thin=False)
    rows, columns = _bounds(kept)
    boxed = _resized(residual[rows, columns], SIDE)
    return _placed(boxed, ((boxed.shape[0] - 1) / 2, (boxed.shape[1] - 1) / 2))


@dataclass(frozen=True)
class Framing:
    """A recipe: how its training images were framed, and how an upload is framed the same way."""

    frame: Callable[[np.ndarray], np.ndarray]  # bright ink on a dark background (H, W) -> 28x28
    description: str  # for the model's description
    # The trainer picks, for a data set, the first recipe whose limit the median subject's longest
    # side (in pixels of the 28x28) is within.
    longest_side_up_to: int
    # A 28x28 upload is taken to be framed as the training images are, and sent as it is, when its
    # border (mean intensity, ink bright) is this dark at most; any other goes through frame.
    border_up_to: float


# A new recipe is one entry here: its name, its framing function, its words and its limit.
RECIPES = {
    "digit": Framing(
        frame_digit,
        "MNIST's own: ink cropped, scaled to fit 20x20 keeping the aspect ratio, centred by centre of mass",
        # MNIST fits each digit in a 20x20 box; its slants and strokes reach a little beyond
        longest_side_up_to=22,
        border_up_to=0.1,  # MNIST's digits leave the border black: its brightest border is 0.033
    ),
    "object": Framing(
        frame_object,
        "Fashion-MNIST's: trimmed to the object, longest side scaled to 28, centred",
        longest_side_up_to=SIDE,
        border_up_to=0.45,  # clothes reach the border: Fashion-MNIST's brightest is 0.41
    ),
}
Recipe = StrEnum("Recipe", [(name, name) for name in RECIPES])
Recipe.__doc__ = "How the training images were framed, so that uploads can be framed the same way."


def recipe_for(longest_side: float) -> Recipe:
    """The recipe for a data set whose median subject spans this many pixels at its longest."""
    for name, framing in RECIPES.items():
        if longest_side <= framing.longest_side_up_to:
            return Recipe(name)
    return Recipe(name)  # larger than any limit: the last, widest recipe
