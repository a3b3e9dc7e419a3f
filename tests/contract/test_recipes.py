"""The recipes' geometry on pictures whose answer is known by construction: where touching digits
are cut, how many digits a page may hold, where an object is placed and which of its parts count
as the object. Bright ink on a dark background, as the recipes take it."""

import numpy as np
import pytest
from scipy import ndimage
from scipy.stats import median_abs_deviation

from contract.geometry import SIDE
from contract.recipes import (
    DIGIT_WIDTH,
    MIN_CONTRAST,
    NOISE_FLOOR,
    STROKE_BAND,
    TOUCHING,
    Box,
    NoInk,
    Recipe,
    SeveralDigits,
    TooManyDigits,
    _block_background,
    _centre_of_mass,
    _contrast_and_mask,
    _cut,
    _even_strokes,
    _extent,
    _framed_digit,
    _grown,
    _noise_sd,
    _otsu,
    _overlapping,
    _pieces,
    _placed,
    _resized,
    _side_by_side,
    _stroke_width,
    _subject,
    border,
    frame_digit,
    frame_digits,
    frame_object,
    ink_is_dark,
    recipe_for,
)
from training.data import load_dataset

HEIGHT = 20


def test_a_box_scales_each_of_its_sides_by_its_own_axis():
    assert Box(10, 20, 30, 40).scaled(2, 0.5) == Box(20, 10, 60, 20)
    assert Box(3, 5, 7, 9).scaled(1.5, 3) == Box(4, 15, 10, 27)  # rounded half to even, as round() does


def strip(width: int, thin: dict[int, int] | None = None, left: int = 5) -> np.ndarray:
    """Ink HEIGHT rows high and `width` columns wide, `left` columns in; the columns of `thin` (offset
    from the left of the ink -> rows of ink) thinner than the rest."""
    mask = np.zeros((HEIGHT + 10, width + 2 * left), bool)
    mask[5 : 5 + HEIGHT, left : left + width] = True
    for column, rows in (thin or {}).items():
        mask[5 : 5 + HEIGHT, left + column] = False
        mask[5 : 5 + rows, left + column] = True
    return mask


def columns_of(part: np.ndarray) -> tuple[int, int]:
    columns = np.nonzero(part.any(axis=0))[0]
    return int(columns[0]), int(columns[-1]) + 1


def test_a_digit_as_wide_as_touching_digits_may_be_is_not_cut():
    width = round(TOUCHING * HEIGHT)
    assert len(_cut(strip(width))) == 1
    assert len(_cut(strip(width + 1))) == 2


@pytest.mark.parametrize("offset", [-4, -1, 0, 3, 4])
def test_touching_digits_are_cut_at_their_thinnest_column_near_where_they_should_meet(offset):
    width = 34  # two digits of DIGIT_WIDTH heights; their meeting is sought 34 // 8 = 4 columns either way
    assert round(width / (DIGIT_WIDTH * HEIGHT)) == 2
    middle = width // 2
    # the thinnest column inside the search; thinner ones just outside it must not be taken
    thin = {middle + offset: 2, middle - 5: 1, middle + 5: 1}
    first, second = _cut(strip(width, thin))
    assert columns_of(first) == (5, 5 + middle + offset)
    assert columns_of(second) == (5 + middle + offset, 5 + width)
    assert (first | second).sum() == strip(width, thin).sum()  # nothing lost, nothing twice
    assert not (first & second).any()


def test_three_digits_run_together_are_cut_into_three():
    width = round(3 * DIGIT_WIDTH * HEIGHT)
    parts = _cut(strip(width, {width // 3: 1, 2 * width // 3: 1}))
    assert [columns_of(part) for part in parts] == [
        (5, 5 + width // 3),
        (5 + width // 3, 5 + 2 * width // 3),
        (5 + 2 * width // 3, 5 + width),
    ]


@pytest.fixture(scope="module")
def mnist_digits(sample_data_dir) -> np.ndarray:
    return load_dataset(sample_data_dir).test.images.astype(np.float32) / 255


def number(digits: np.ndarray) -> np.ndarray:
    """MNIST digits side by side, a digit's width apart, bright on black, three times their size."""
    page = np.zeros((28 + 40, 40 + 30 * len(digits)), np.float32)
    for index, digit in enumerate(digits):
        page[20:48, 20 + 30 * index : 48 + 30 * index] = digit
    return np.kron(page, np.ones((3, 3), np.float32))


@pytest.mark.parametrize("count", [1, 2, 3])
def test_a_number_of_exactly_the_most_digits_a_picture_may_hold_is_framed_and_one_more_is_refused(mnist_digits, count):
    digits = mnist_digits[:count]
    framed = frame_digits(number(digits), most=count)
    assert len(framed) == count
    for index, (box, _) in enumerate(framed):
        assert 3 * (20 + 30 * index) <= box.left and box.left + box.width <= 3 * (48 + 30 * index)
    if count > 1:
        with pytest.raises(TooManyDigits, match=f"^found {count} digits side by side; the limit is {count - 1} per"):
            frame_digits(number(digits), most=count - 1)


def test_digits_that_touch_count_against_the_limit_once_cut(mnist_digits):
    wide = [digit for digit in mnist_digits if np.ptp(np.nonzero(digit.max(axis=0) > 0.25)[0]) >= 16][:3]
    page = np.zeros((68, 100), np.float32)
    for index, digit in enumerate(wide):  # frames 18 columns apart: strokes meet
        np.maximum(
            page[20:48, 20 + 18 * index : 48 + 18 * index], digit, out=page[20:48, 20 + 18 * index : 48 + 18 * index]
        )
    assert len(frame_digits(page, most=3)) == 3
    with pytest.raises(TooManyDigits, match="^found 3 digits side by side; the limit is 2 per picture$"):
        frame_digits(page, most=2)


def object_picture(background: float = 0.0) -> np.ndarray:
    """A garment 60 rows high and 28 wide: a bright body over faint legs, on a flat background."""
    picture = np.full((100, 100), background, np.float32)
    picture[20:50, 35:63] = background + 0.7  # bright half
    picture[50:80, 35:63] = background + 0.2  # faint half, well above the background's noise
    return picture


def ink_span(framed: np.ndarray, axis: int) -> tuple[int, int]:
    indices = np.nonzero(framed.max(axis=axis) > 0.02)[0]
    return int(indices[0]), int(indices[-1]) + 1


def test_an_object_is_framed_whole_faint_parts_included_longest_side_filling_the_frame():
    framed = frame_object(object_picture())
    assert ink_span(framed, axis=1) == (0, SIDE)  # rows: the 60 of the garment scaled to 28
    left, right = ink_span(framed, axis=0)
    assert (left, right) == (7, 21)  # columns: centred, 30 with the mask's edge at the same scale
    assert framed[20, 10:18] == pytest.approx(0.2, abs=0.02)  # the faint half kept as faint, not stretched


def test_an_object_wider_than_high_is_centred_down_the_frame():
    framed = frame_object(object_picture().T)
    top, bottom = ink_span(framed, axis=1)
    assert (top, bottom) == (7, 21)
    assert ink_span(framed, axis=0) == (0, SIDE)


def test_an_objects_background_level_is_taken_away_whatever_it_is():
    plain = frame_object(object_picture())
    np.testing.assert_allclose(frame_object(object_picture(background=0.25)), plain, atol=1 / 255)


def test_shading_darker_than_the_background_is_background():
    darker = object_picture(background=0.3)
    darker[52:58, 40:60] = 0.0  # a shadow inside the garment's box, below the background's level
    plain = object_picture(background=0.3)
    plain[52:58, 40:60] = 0.3
    np.testing.assert_allclose(frame_object(darker), frame_object(plain), atol=1 / 255)


@pytest.mark.parametrize(
    "longest_side, recipe", [(10, "digit"), (22, "digit"), (23, "object"), (SIDE, "object"), (SIDE + 5, "object")]
)
def test_a_data_sets_recipe_is_the_first_whose_limit_its_subjects_are_within(longest_side, recipe):
    assert recipe_for(longest_side) is Recipe(recipe)


def test_one_digit_is_framed_and_a_number_of_two_is_refused_as_two(mnist_digits):
    assert frame_digit(number(mnist_digits[:1])).shape == (SIDE, SIDE)
    with pytest.raises(SeveralDigits, match="^found 2 digits side by side$"):
        frame_digit(number(mnist_digits[:2]))


def test_a_groups_extent_is_the_longer_side_of_the_box_around_all_its_pieces():
    # boxes: min row, max row, min column, max column, inclusive
    assert _extent(np.array([[0, 9, 0, 4], [20, 29, 10, 14]])) == 30  # rows 0-29
    assert _extent(np.array([[0, 4, 0, 9], [0, 4, 20, 29]])) == 30  # columns 0-29


# The subject's first piece: rows 100-200 and columns 100-140, 1,000 pixels. Pieces within 0.35 of
# its longer side (100 rows: 35 pixels) that hold 5% of its pixels join it.
MAIN = [100, 200, 100, 140]
FAR = [400, 410, 400, 410]  # beyond reach on every side


@pytest.mark.parametrize(
    "box, joins",
    [
        ([235, 240, 110, 120], True),  # below, its top row 35 under the subject's last
        ([236, 240, 110, 120], False),
        ([50, 65, 110, 120], True),  # above, its last row 35 over the subject's first
        ([50, 64, 110, 120], False),
        ([140, 150, 175, 180], True),  # to the right, its first column 35 past the subject's last
        ([140, 150, 176, 180], False),
        ([140, 150, 50, 65], True),  # to the left
        ([140, 150, 50, 64], False),
    ],
)
def test_a_piece_joins_the_subject_within_reach_of_its_box_and_not_one_pixel_further(box, joins):
    boxes = np.array([MAIN, box, FAR])
    kept = _grown(0, boxes, np.array([1000, 50, 1000]), np.ones(3, bool))
    assert kept.tolist() == [True, joins, False]


def test_only_sizeable_candidates_join_and_a_piece_within_reach_of_one_that_joined_joins_next():
    boxes = np.array(
        [
            MAIN,
            [140, 150, 170, 175],  # near, 5% of the subject's pixels: joins
            [140, 150, 150, 160],  # near, just under 5%: a speck
            [140, 150, 150, 160],  # near, but a ruled line: not a candidate
            [140, 150, 205, 250],  # within reach only of the piece at right once it has joined
            FAR,
        ]
    )
    candidates = np.array([True, True, True, False, True, True])
    kept = _grown(0, boxes, np.array([1000, 50, 49, 1000, 200, 1000]), candidates)
    assert kept.tolist() == [True, True, False, False, True, False]


@pytest.mark.parametrize("side, block", [(160, 10), (64, 4)])  # a sixteenth of the longer side, at least 4
def test_the_paper_is_the_darkest_block_median_within_two_blocks(side, block):
    """A bright patch five blocks square in a corner reads as paper (a thick stroke) under its
    first three blocks, and not from its fourth, which has a dark block within two."""
    pixels = np.zeros((side, side), np.float32)
    pixels[: 5 * block, : 5 * block] = 1
    centres = [round((i + 0.5) * block - 0.5) for i in range(6)]
    levels = _block_background(pixels)[centres, centres[0]]
    assert levels[:2].min() == 1 and levels[2] > 0.85 and levels[3:].max() < 0.1


def test_the_paper_between_blocks_is_interpolated_without_overshoot():
    """Paper in two flat halves: every level read lies between the two, where a bicubic
    interpolation would ring at the step."""
    pixels = np.full((160, 160), 0.2, np.float32)
    pixels[:, 80:] = 0.6
    paper = _block_background(pixels)
    assert paper.min() >= np.float32(0.2) and paper.max() <= np.float32(0.6)


def test_a_digits_ink_starts_at_half_the_threshold():
    """A halo at exactly half the threshold beside two strokes at full ink, between them and so
    inside the digit's box, adds no ink to the frame."""
    threshold = 0.3
    kept = np.zeros((60, 60), bool)
    kept[10:50, 20:25] = kept[10:50, 35:40] = True
    stroke = np.where(kept, np.float32(0.9), np.float32(0))
    haloed = stroke.copy()
    haloed[10:50, 25:27] = haloed[10:50, 33:35] = threshold / 2
    np.testing.assert_array_equal(_framed_digit(haloed, kept, threshold), _framed_digit(stroke, kept, threshold))
    assert _framed_digit(stroke, kept, threshold).max() == 1


# Cut from the ink of a photographed page with ruled lines, where cc3d 4.1's labelling of bool masks
# split the top piece in two and left a label without pixels: the piece chosen was empty (a 500).
# 29 rows of 7 pixels, one row per word.
SPLIT_BY_CC3D = """
....### ....### ....### ...#### ...#### ....### ....### .....## ....... ....... ....... ####### #######
....... ....... ....... ....... ....... ....... ....... ....... ....... ....... ....... ....... .......
....... ####### #######
"""


def assert_labelled_as_scipy_labels(mask: np.ndarray) -> None:
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    pieces = _pieces(mask)
    assert len(pieces.counts) == count
    assert sorted(pieces.counts.tolist()) == sorted(np.bincount(labels.ravel())[1:].tolist())


def test_every_piece_is_labelled_whole_as_scipy_labels_it():
    mask = np.array([[pixel == "#" for pixel in row] for row in SPLIT_BY_CC3D.split()])
    assert_labelled_as_scipy_labels(mask)
    rng = np.random.default_rng(0)  # random masks, where cc3d's bool path went wrong as well
    for _ in range(500):
        mask = rng.random(rng.integers(2, 40, 2)) < rng.uniform(0.1, 0.7)
        if mask.any():
            assert_labelled_as_scipy_labels(mask)


def test_each_of_the_pieces_that_reach_furthest_is_tried_as_the_subjects_first_piece():
    """The digit's two strokes reach second and fourth furthest, lone scratches first and third:
    the digit, seeded by its longer stroke, outspans every scratch."""
    mask = np.zeros((200, 200), bool)
    mask[10, 100:140] = True  # a scratch reaching 40
    mask[100:136, 30:33] = True  # the digit's first stroke, 36
    mask[190, 120:150] = True  # a scratch reaching 30
    mask[140:165, 30:33] = True  # the digit's second stroke, 25, 4 rows below the first
    digit = np.zeros_like(mask)
    digit[100:165, 30:33] = mask[100:165, 30:33]
    assert (_subject(_pieces(mask)) == digit).all()


def test_ruled_lines_clear_of_a_digit_are_not_framed_with_it(mnist_digits):
    """Two lines across the page, away from the digit: fewer pieces than the subject's seeds, so a
    line was once tried as the subject's first piece, and its reach won."""
    for digit in mnist_digits[:5]:
        page = number(digit[None])
        plain = frame_digit(page)
        page[5:8], page[-8:-5] = 0.9, 0.9
        # the same digit, its strokes' level set by a threshold the lines moved a little
        assert np.abs(frame_digit(page) - plain).mean() < 0.03


def test_ink_is_dark_when_the_paper_is_nearer_the_bright_end_a_tie_keeping_the_training_polarity():
    page = np.full((40, 40), 0.5, np.float32)
    page[10:12, 10:12], page[20:22, 20:22] = 0.25, 0.75  # as far below the paper as above it
    assert not ink_is_dark(page)
    page[10:12, 10:12] = 0.24
    assert ink_is_dark(page)


def test_ink_is_judged_from_2x2_averages():
    """A dark stroke two pixels wide against a bright 3x3 speck on mid-grey paper: at 2x2 the
    stroke keeps its full depth (0.5 below the paper) and outweighs the speck (0.4 above); averaged
    over 3x3 it would be a third as deep, and the speck would win."""
    page = np.full((48, 48), 0.5, np.float32)
    page[:, 10:12] = 0.0
    page[30:33, 30:33] = 0.9
    assert ink_is_dark(page)


def test_the_border_is_the_first_and_last_row_then_the_first_and_last_column():
    picture = np.arange(16).reshape(4, 4)
    assert border(picture).tolist() == [0, 1, 2, 3, 12, 13, 14, 15, 0, 4, 8, 12, 3, 7, 11, 15]


def test_the_centre_of_mass_of_ink_and_of_a_frame_without_any():
    picture = np.zeros((20, 14), np.float32)
    assert _centre_of_mass(picture) == (9.5, 6.5)  # the frame's own centre
    picture[3, 5], picture[7, 9] = 1.0, 3.0
    assert _centre_of_mass(picture) == pytest.approx((6.0, 8.0))


def block(height: int, width: int, value: float = 1.0) -> np.ndarray:
    """A rectangle of ink on an 80x80 canvas (the 20x20 box at FINE resolution)."""
    canvas = np.zeros((80, 80), np.float32)
    canvas[20 : 20 + height, 20 : 20 + width] = value
    return canvas


def test_a_strokes_width_is_twice_its_area_over_its_outline():
    # a rectangle's outline is 2w + 2h - 4 pixels: 9x11 reads 2 * 99 / 36
    assert _stroke_width(block(9, 11)) == 5.5
    assert _stroke_width(block(12, 38)) == 9.5
    with_a_rim = block(11, 13, 0.5)
    with_a_rim[21:30, 21:32] = 1.0  # ink at exactly half is not a stroke
    assert _stroke_width(with_a_rim) == 5.5


@pytest.mark.parametrize("rectangle", [(9, 11), (12, 38)], ids=["band's low edge", "band's high edge"])
def test_strokes_as_wide_as_mnists_are_left_alone_up_to_the_bands_edges(rectangle):
    assert STROKE_BAND == (5.5, 9.5)
    ink = block(*rectangle)
    np.testing.assert_array_equal(_even_strokes(ink), ink)


@pytest.mark.parametrize("width, after", [(3, 7), (5, 7), (19, 11), (40, 32)])
def test_a_pen_far_thinner_or_thicker_is_brought_towards_mnists_width_by_at_most_4_pixels_a_side(width, after):
    """A bar 60 high: 3 wide is widened by 2 a side, 5 by 1, 19 narrowed by 4, and 40 by no more
    than 4 a side either."""
    evened = _even_strokes(block(60, width))
    assert int((evened[50] > 0.5).sum()) == after


@pytest.mark.parametrize("centre", [(19, 19), (0, 0), (19, 0)])
def test_a_frame_is_placed_whole_however_far_its_centre_of_mass_is_from_its_middle(centre):
    frame = np.full((20, 20), 128 / 255, np.float32)  # 8-bit, as _placed leaves it
    placed = _placed(frame, centre)
    assert placed.sum() == pytest.approx(frame.sum())
    assert ink_span(placed, axis=1) in {(0, 20), (8, 28)} and ink_span(placed, axis=0) in {(0, 20), (8, 28)}


def test_a_one_pixel_stroke_stays_one_pixel_wide_when_scaled_down():
    assert _resized(np.ones((60, 1), np.float32), 20).shape == (20, 1)
    assert _resized(np.ones((1, 60), np.float32), 20).shape == (1, 20)


def test_a_speck_inside_a_digits_box_but_clear_of_its_strokes_is_left_out(sample_data_dir):
    test = load_dataset(sample_data_dir).test
    zero = test.images[np.nonzero(test.labels == 0)[0][0]].astype(np.float32) / 255
    page = number(zero[None])
    plain = frame_digit(page)
    rows, columns = np.nonzero(page > 0.5)
    middle = (rows.min() + rows.max()) // 2, (columns.min() + columns.max()) // 2
    assert page[middle] == 0  # the hole of the 0
    page[middle[0] - 1 : middle[0] + 2, middle[1] - 1 : middle[1] + 2] = 1.0
    np.testing.assert_array_equal(frame_digit(page), plain)


def bars(*spans: tuple[int, int, int, int, float], height: int = 100, width: int = 200) -> list[tuple[int, int]]:
    """The digits _side_by_side finds among bars (first row, last row, first column, last column,
    strength), drawn exactly, without the blur of a photo: each digit's first and last column."""
    smoothed = np.zeros((height, width), np.float32)
    for top, bottom, left, right, strength in spans:
        smoothed[top : bottom + 1, left : right + 1] = strength
    pieces = _pieces(smoothed > 0)
    found = _side_by_side(pieces, smoothed)
    return [(int(pieces.boxes[digit, 2].min()), int(pieces.boxes[digit, 3].max())) for digit in found]


def test_strokes_closer_than_a_tenth_of_their_height_are_one_digit():
    # 60 rows high: each side reaches 3 columns, so a gap of 6 columns is bridged and 7 is not
    assert bars((20, 79, 50, 57, 1.0), (20, 79, 64, 71, 1.0)) == [(50, 71)]
    assert bars((20, 79, 50, 57, 1.0), (20, 79, 65, 72, 1.0)) == [(50, 57), (65, 72)]


def test_a_speck_under_8_rows_beside_a_digit_is_not_part_of_it():
    first, second = (20, 79, 20, 27, 1.0), (20, 79, 60, 67, 1.0)
    assert bars(first, second, (50, 56, 29, 30, 1.0)) == [(20, 27), (60, 67)]  # 7 rows, a column away
    assert bars(first, second, (50, 57, 29, 30, 1.0)) == [(20, 30), (60, 67)]  # 8 rows: a stroke


def test_digits_of_a_number_are_alike_in_height_down_to_six_tenths():
    tall = (20, 79, 20, 27, 1.0)  # 60 rows
    assert bars(tall, (32, 67, 60, 67, 1.0)) == [(20, 27), (60, 67)]  # 36 rows: 0.6 of 60
    assert bars(tall, (33, 67, 60, 67, 1.0)) == [(20, 27)]  # 35 rows: a speck beside a digit
    assert bars((20, 81, 20, 27, 1.0), (32, 68, 60, 67, 1.0)) == [(20, 27)]  # 37 rows against 62: 0.597


def test_digits_of_a_number_are_alike_in_strength_down_to_six_tenths():
    first, second = (20, 79, 20, 27, 1.0), (20, 79, 60, 67, 1.0)
    assert bars(first, second, (20, 79, 100, 107, 0.6)) == [(20, 27), (60, 67), (100, 107)]
    assert bars(first, second, (20, 79, 100, 107, 0.5)) == [(20, 27), (60, 67)]  # a shadow's edge


def test_digits_as_small_as_eight_rows_are_found():
    assert bars((20, 27, 20, 22, 1.0), (20, 27, 40, 42, 1.0), height=50, width=60) == [(20, 22), (40, 42)]


def test_digits_at_the_pictures_edges_are_their_own():
    assert bars((20, 79, 0, 7, 1.0), (20, 79, 60, 67, 1.0)) == [(0, 7), (60, 67)]
    assert bars((20, 79, 0, 7, 1.0), (20, 79, 192, 199, 1.0)) == [(0, 7), (192, 199)]


def test_ink_that_runs_together_with_ruled_lines_is_one_subject():
    # two strokes spanning the picture's height: no piece is clear of the lines
    assert bars((0, 99, 20, 27, 1.0), (0, 99, 60, 67, 1.0)) == [(20, 67)]


def test_the_digits_are_the_group_that_holds_the_most_ink_pixels_times_strength():
    speck = (5, 14, 5, 9, 1.0)  # first in the picture's order, alike to nothing
    faint = [(20, 79, 20, 27, 0.55), (20, 79, 50, 57, 0.55)]  # 960 pixels at 0.55: 528
    strong = (20, 79, 100, 111, 1.0)  # 720 pixels at 1.0: 720, and too strong to be alike to them
    assert bars(speck, *faint, strong) == [(100, 111)]
    assert bars(speck, *faint) == [(20, 27), (50, 57)]


def test_a_digit_is_on_the_line_of_another_when_its_middle_is_within_the_others_rows_ends_included():
    reference = (40, 99, 20, 27, 1.0)  # rows 40-99, the most ink
    assert bars(reference, (20, 60, 60, 67, 1.0)) == [(20, 27), (60, 67)]  # middle at row 40
    assert bars(reference, (79, 119, 60, 67, 1.0), height=130) == [(20, 27), (60, 67)]  # middle at row 99


def brute_otsu(codes: np.ndarray) -> float:
    """Otsu's threshold by its definition: the level t that maximises w0 w1 (m0 - m1)^2 over
    the classes <= t and > t."""
    best, chosen = -1.0, 0
    values = np.arange(256)
    counts = np.bincount(codes.ravel(), minlength=256).astype(np.float64)
    for level in range(255):
        low, high = counts[: level + 1], counts[level + 1 :]
        if not low.sum() or not high.sum():
            continue
        m0, m1 = low @ values[: level + 1] / low.sum(), high @ values[level + 1 :] / high.sum()
        between = low.sum() * high.sum() * (m0 - m1) ** 2
        if between > best:
            best, chosen = between, level
    return chosen / 255


@pytest.mark.parametrize("size, bright", [(64, 200), (2000, 200), (64, 255)])
def test_otsus_threshold_is_the_one_its_definition_gives(size, bright):
    rng = np.random.default_rng(size)
    ink = rng.normal(bright, 20 if bright < 255 else 0, (size, size))
    codes = np.where(rng.random((size, size)) < 0.2, ink, rng.normal(40, 15, (size, size)))
    codes = np.clip(np.rint(codes), 0, 255).astype(np.uint8)
    assert _otsu(codes / np.float32(255)) == brute_otsu(codes)


def test_otsus_threshold_can_be_the_last_level_but_one():
    codes = np.full((10, 10), 254, np.uint8)
    codes[:3] = 255
    assert _otsu(codes / np.float32(255)) == brute_otsu(codes) == 254 / 255


def test_the_noise_is_estimated_from_the_median_absolute_deviation():
    noise = np.random.default_rng(1).normal(0.3, 0.05, 100_000)
    assert _noise_sd(noise) == pytest.approx(0.05, rel=0.02)


def _stroke(level: float) -> np.ndarray:
    picture = np.zeros((100, 100), np.float32)
    picture[20:80, 45:55] = level
    return picture


def _patch_on_noisy_paper(level: float) -> np.ndarray:
    picture = np.random.default_rng(0).normal(0.25, 0.08, (100, 100))
    picture[45:55, 45:55] = level
    return np.clip(picture, 0, 1).astype(np.float32)


def _object_on_noisy_paper() -> np.ndarray:
    picture = np.random.default_rng(1).normal(0.1, 0.05, (100, 100))
    picture[10:90, 10:90] = 0.7
    return np.clip(picture, 0, 1).astype(np.float32)


def _object_on_clean_paper() -> np.ndarray:
    picture = np.zeros((100, 100), np.float32)
    picture[10:90, 10:90] = 0.7
    return picture


@pytest.mark.parametrize(
    "picture, thin, deciding",
    [
        (_stroke(0.8), True, "otsu"),
        (_patch_on_noisy_paper(0.45), True, "floor"),  # the paper's noise outranks a faint patch
        (_stroke(0.16), True, "half the minimum contrast"),
        (_object_on_noisy_paper(), False, "floor"),  # read from the border alone: the object is most of it
        (_object_on_clean_paper(), False, "half the minimum contrast"),
    ],
    ids=["stroke", "faint patch on noisy paper", "faint stroke", "object on noisy paper", "object on clean paper"],
)
def test_the_threshold_is_the_highest_of_otsus_the_noise_floor_and_half_the_minimum_contrast(picture, thin, deciding):
    """Thin subjects: the highest of Otsu's threshold, 4 noise deviations over the picture's median
    and half the minimum contrast; large ones: the last two, read from the border."""
    smoothed, pieces, threshold = _contrast_and_mask(picture, thin)
    paper = smoothed.ravel() if thin else border(smoothed)
    terms = {
        "otsu": brute_otsu(np.round(smoothed * 255).astype(np.uint8)) if thin else 0.0,
        "floor": NOISE_FLOOR * median_abs_deviation(paper, scale="normal") + np.median(paper),
        "half the minimum contrast": MIN_CONTRAST / 2,
    }
    assert max(terms, key=terms.get) == deciding
    assert threshold == pytest.approx(terms[deciding], rel=1e-4)
    assert (pieces.labels > 0).sum() == (smoothed > threshold).sum()


def test_boxes_that_share_an_edge_are_one_group_and_boxes_meeting_at_a_corner_are_not():
    # min row, max row, min column, max column
    side_by_side = np.array([[0, 9, 0, 4], [0, 9, 5, 9]])
    one_above_the_other = np.array([[0, 4, 0, 9], [5, 9, 0, 9]])
    corner = np.array([[0, 4, 0, 4], [5, 9, 5, 9]])
    assert _overlapping(side_by_side, (20, 20)).tolist() == [0, 0]
    assert _overlapping(one_above_the_other, (20, 20)).tolist() == [0, 0]
    assert _overlapping(corner, (20, 20)).tolist() == [0, 1]


def spans(mask: np.ndarray) -> dict[tuple[int, int], bool]:
    """Each piece's height and width, and whether it may be the subject (is no ruled line)."""
    pieces = _pieces(mask)
    return {
        (int(height), int(width)): bool(candidate)
        for height, width, candidate in zip(pieces.heights, pieces.widths, pieces.candidates, strict=True)
    }


def test_a_piece_spanning_98_percent_of_the_picture_is_a_ruled_line_and_97_percent_is_not():
    across = np.zeros((100, 200), bool)
    across[40:60, 90:110] = True  # a digit
    across[1:99, 10:12] = True  # 98 rows of 100
    across[1:98, 20:22] = True  # 97
    assert spans(across) == {(20, 20): True, (98, 2): False, (97, 2): True}
    along = np.zeros((100, 200), bool)
    along[40:60, 90:110] = True
    along[5:7, 2:198] = True  # 196 columns of 200
    along[90:92, 2:197] = True  # 195
    assert spans(along) == {(20, 20): True, (2, 196): False, (2, 195): True}


def test_a_picture_without_ink_says_so():
    with pytest.raises(NoInk, match="^no ink found: nothing in the picture stands out from its background$"):
        _pieces(np.zeros((10, 10), bool))
