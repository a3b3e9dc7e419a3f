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
from itertools import pairwise
from typing import NamedTuple

import cc3d
import numpy as np
from PIL import Image, ImageFilter

from contract.geometry import BOX, SIDE


class NoInk(ValueError):
    """Nothing stands out from the background: an empty page, or a picture too faint to read."""


class SeveralDigits(ValueError):
    """A number, not a digit: several digits side by side, where one was expected."""

    def __init__(self, count: int):
        super().__init__(f"found {count} digits side by side")


class TooManyDigits(ValueError):
    """More digits side by side than a picture may hold."""

    def __init__(self, count: int, most: int):
        super().__init__(f"found {count} digits side by side; the limit is {most} per picture")


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
# Digits of a number stand side by side, pieces whose boxes overlap making one digit. Digits of one
# number are alike: heights within DIGIT_HEIGHT of each other either way, pixels within DIGIT_INK,
# strength within DIGIT_LEVEL, each one's middle on the others' rows.
DIGIT_HEIGHT = 0.6
DIGIT_INK = 0.25  # a 1 has about 0.4 of an 8's pixels
DIGIT_LEVEL = 0.6
MIN_DIGIT_HEIGHT = 8  # pixels of the picture framing sees: smaller pieces are specks
# Pieces closer side by side than this share of their heights are one digit broken in two (a 4's
# stem apart from its arm); the digits of a number stand further apart.
STROKE_GAP = 0.1
# A digit wider than TOUCHING heights is digits that touch, each about DIGIT_WIDTH heights wide
# (MNIST's digits are narrower than tall, a median of 0.6, but a slanted 2 may be wider than tall).
TOUCHING = 1.6
DIGIT_WIDTH = 0.75


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


@dataclass(frozen=True)
class Pieces:
    """The connected pieces of a picture's ink mask."""

    labels: np.ndarray  # (H, W): 0 for paper, piece i + 1 for piece i
    counts: np.ndarray  # (P,) pixels of each piece
    boxes: np.ndarray  # (P, 4) min row, max row, min column, max column, inclusive
    candidates: np.ndarray  # (P,) bool: may be the subject (not a ruled line or the page's edge)
    lined: bool  # every piece spans the picture: ink and ruled lines in one

    @property
    def heights(self) -> np.ndarray:
        return self.boxes[:, 1] - self.boxes[:, 0] + 1

    @property
    def widths(self) -> np.ndarray:
        return self.boxes[:, 3] - self.boxes[:, 2] + 1

    def mask(self, indices: np.ndarray) -> np.ndarray:
        return np.isin(self.labels, indices + 1)


class Box(NamedTuple):
    """Where a digit is in a picture, in its pixels."""

    left: int
    top: int
    width: int
    height: int

    def scaled(self, across: float, down: float) -> "Box":
        return Box(
            round(self.left * across), round(self.top * down), round(self.width * across), round(self.height * down)
        )

    @classmethod
    def around(cls, mask: np.ndarray) -> "Box":
        rows, columns = _bounds(mask)
        return cls(int(columns.start), int(rows.start), int(columns.stop - columns.start), int(rows.stop - rows.start))


def _pieces(mask: np.ndarray) -> Pieces:
    """The mask's pieces; one that spans the whole picture is a ruled line or an edge of the page."""
    # As uint8: cc3d 4.1's path for bool masks can split a 2D piece in two, leaving labels without
    # pixels (tests/contract/test_recipes.py has such a mask); its general path labels it whole.
    labels = cc3d.connected_components(mask.view(np.uint8), connectivity=8)
    stats = cc3d.statistics(labels, no_slice_conversion=True)
    counts = stats["voxel_counts"][1:]
    if not counts.any():
        raise NoInk("no ink found: nothing in the picture stands out from its background")
    boxes = stats["bounding_boxes"][1:].astype(np.int64)
    heights, widths = boxes[:, 1] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 2] + 1
    spanning = (heights >= SPANNING * mask.shape[0]) | (widths >= SPANNING * mask.shape[1])
    lined = bool(spanning.all())
    return Pieces(labels, counts, boxes, ~spanning if not lined else np.ones(len(counts), bool), lined)


def _subject(pieces: Pieces) -> np.ndarray:
    """The subject's mask. Each of the pieces that reach furthest gathers the sizeable pieces near
    it; the group that spans most is the subject (a digit broken into strokes outspans a blob of
    dust of more pixels than any one stroke)."""
    candidates = np.nonzero(pieces.candidates)[0]
    reaches = np.maximum(pieces.heights, pieces.widths)[candidates]
    seeds = candidates[np.argsort(reaches)[::-1][:SEEDS]]  # never a ruled line, which would outspan any digit
    grown = [_grown(main, pieces.boxes, pieces.counts, pieces.candidates) for main in seeds]
    return pieces.mask(np.nonzero(max(grown, key=lambda group: _extent(pieces.boxes[group])))[0])


def _side_by_side(pieces: Pieces, smoothed: np.ndarray) -> list[np.ndarray]:
    """The digits of a number, left to right, each as the indices of its pieces. Pieces whose boxes
    overlap, or stand within STROKE_GAP of each other, make one group (a digit broken into strokes);
    the digits are the set of groups alike in height, ink and strength and written on one line that
    holds the most ink (pixels times strength), so that a shadow's edge, blobs or specks are not
    taken for digits. Ink run together with ruled lines is one subject, as _subject takes it.
    Linear in the picture's pixels and pieces: a page of text has thousands."""
    chosen = np.nonzero(pieces.candidates & (pieces.heights >= MIN_DIGIT_HEIGHT))[0]
    if pieces.lined or not len(chosen):
        return [np.nonzero(pieces.candidates)[0]]
    boxes = pieces.boxes[chosen].copy()
    reach = np.round(STROKE_GAP / 2 * pieces.heights[chosen]).astype(np.int64)
    boxes[:, 2], boxes[:, 3] = boxes[:, 2] - reach, boxes[:, 3] + reach  # a broken stroke's gap, bridged
    group_of = _overlapping(np.clip(boxes, 0, None), smoothed.shape)  # (C,) group of each chosen piece
    groups = group_of.max() + 1
    top = np.full(groups, smoothed.shape[0])
    bottom = np.zeros(groups, np.int64)
    np.minimum.at(top, group_of, pieces.boxes[chosen, 0])
    np.maximum.at(bottom, group_of, pieces.boxes[chosen, 1])
    left = np.full(groups, smoothed.shape[1])
    np.minimum.at(left, group_of, pieces.boxes[chosen, 2])
    counts = np.bincount(group_of, pieces.counts[chosen])  # group_of holds every group: no minlength
    # each piece's summed strength, from its pixels: one pass over the picture for all of them
    strength = np.bincount(pieces.labels.ravel(), smoothed.ravel())[1:]
    levels = np.bincount(group_of, strength[chosen]) / counts
    heights, middles = bottom - top + 1, (top + bottom) / 2

    def alike(values: np.ndarray, share: float) -> np.ndarray:
        return (values[:, None] * share <= values[None, :]) & (values[None, :] * share <= values[:, None])

    comparable = (
        alike(heights, DIGIT_HEIGHT)
        & alike(counts, DIGIT_INK)
        & alike(levels, DIGIT_LEVEL)
        & (top[:, None] <= middles[None, :])
        & (middles[None, :] <= bottom[:, None])
    )  # (reference, group): groups can be many, but a number's digits are a handful
    digits = np.nonzero(comparable[np.argmax(comparable @ (counts * levels))])[0]
    return [chosen[group_of == digit] for digit in digits[np.argsort(left[digits])]]


def _overlapping(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The group of each box: boxes that overlap or touch, directly or through others, share one.
    The boxes are painted and their painted regions labelled, in one pass."""
    painted = np.zeros(shape, bool)  # (boxes reaching past the right edge are cut there by slicing)
    for top, bottom, left, right in boxes:
        painted[top : bottom + 1, left : right + 1] = True
    regions = cc3d.connected_components(painted, connectivity=4)
    _, group_of = np.unique(regions[boxes[:, 0], boxes[:, 2]], return_inverse=True)
    return group_of


def _cut(mask: np.ndarray) -> list[np.ndarray]:
    """One digit's mask, cut into the digits that touch in it, if it is wider than one."""
    rows, columns = _bounds(mask)
    height, width = rows.stop - rows.start, columns.stop - columns.start
    if width <= TOUCHING * height:
        return [mask]
    ink = mask.sum(axis=0)
    count = max(2, round(width / (DIGIT_WIDTH * height)))
    window = width // (4 * count)
    cuts = [columns.start]
    for index in range(1, count):
        near = columns.start + index * width // count
        cuts.append(near - window + int(np.argmin(ink[near - window : near + window + 1])))
    cuts.append(columns.stop)
    parts = []
    for start, end in pairwise(cuts):
        part = np.zeros_like(mask)
        part[:, start:end] = mask[:, start:end]
        parts.append(part)
    return parts


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


def _contrast_and_mask(residual: np.ndarray, thin: bool) -> tuple[np.ndarray, Pieces, float]:
    """The smoothed residual, the pieces of its ink, and the threshold that made them. Thin subjects
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
    return smoothed, _pieces(smoothed > threshold), threshold


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
    reach = max(round((STROKE_WIDTH - width) / 2), -4)  # at most 4 a side: a width of 0 reaches 4 already
    if not reach:
        return ink
    kind = ImageFilter.MaxFilter if reach > 0 else ImageFilter.MinFilter
    return np.asarray(Image.fromarray(ink.astype(np.float32), "F").filter(kind(2 * abs(reach) + 1)))


def _digit_pieces(pixels: np.ndarray) -> tuple[np.ndarray, Pieces, float]:
    residual = pixels - _block_background(pixels)
    return _contrast_and_mask(residual, thin=True)


def frame_digit(pixels: np.ndarray) -> np.ndarray:
    """Bright ink on a dark background (H, W) -> the MNIST-framed 28x28; SeveralDigits if it
    holds a number."""
    smoothed, pieces, threshold = _digit_pieces(pixels)
    digits = len(_side_by_side(pieces, smoothed))  # uncut: a wide digit is not taken for two that touch
    if digits > 1:
        raise SeveralDigits(digits)
    return _framed_digit(smoothed, _subject(pieces), threshold)


def frame_digits(pixels: np.ndarray, most: int) -> list[tuple[Box, np.ndarray]]:
    """Bright ink on a dark background (H, W) -> each digit's box in it and its MNIST-framed
    28x28, left to right; a lone digit framed as frame_digit frames it. TooManyDigits past most."""
    smoothed, pieces, threshold = _digit_pieces(pixels)
    digits = _side_by_side(pieces, smoothed)
    if len(digits) > most:
        raise TooManyDigits(len(digits), most)
    masks = [part for digit in digits for part in _cut(pieces.mask(digit))]
    if len(masks) > most:
        raise TooManyDigits(len(masks), most)
    if len(masks) == 1:
        masks = [_subject(pieces)]
    return [(Box.around(mask), _framed_digit(smoothed, mask, threshold)) for mask in masks]


def _framed_digit(smoothed: np.ndarray, kept: np.ndarray, threshold: float) -> np.ndarray:
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
    _, pieces, _ = _contrast_and_mask(residual, thin=False)
    kept = _subject(pieces)
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
