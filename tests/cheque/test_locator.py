"""The amount-box locator on whole synthetic cheques: it finds the box, never something else."""

import io

import numpy as np
from PIL import Image

from recognition.cheque import (
    PAD,
    _amount_box,
    _Candidate,
    _grown_all,
    _inside_frame,
    _Line,
    _without_top_marks,
    _Word,
    locate_amount,
)
from recognition.decode import decode_page
from recognition.doctypes import CHEQUE, PAGE_MIN_WIDTH, read_document
from training.cheques import TEMPLATES, ChequeSpec, render_cheque


def _overlap(found, truth, scale: float) -> float:
    """Share of the true box (uploaded pixels) inside the region found (decoded pixels)."""
    x, y, w, h = truth
    bx, by = found.x * scale, found.y * scale
    bw, bh = found.width * scale, found.height * scale
    ix = max(0.0, min(x + w, bx + bw) - max(x, bx))
    iy = max(0.0, min(y + h, by + bh) - max(y, by))
    return ix * iy / (w * h)


def test_finds_the_amount_box_on_every_template(cheques):
    found_count = hits = 0
    for cheque in cheques:
        page, scale = decode_page(cheque.image, min_width=PAGE_MIN_WIDTH)
        found = locate_amount(page)
        if found is None:  # allowed (the reading then needs review), but rare
            continue
        found_count += 1
        # Whatever is found is the amount box, never another part of the cheque.
        assert _overlap(found.box, cheque.box, scale) > 0.7, cheque.spec.template.name
        hits += 1
    assert found_count >= 38  # of 40


def test_box_kind_matches_the_template(cheques):
    for cheque in cheques[:10]:
        page, _ = decode_page(cheque.image, min_width=PAGE_MIN_WIDTH)
        found = locate_amount(page)
        assert found.kind == cheque.spec.template.amount_kind
        assert found.sign is not None


def test_no_box_means_review_not_a_guess(recognizer):
    # A cheque-sized page with digits on it but no printed structure at all.
    rng = np.random.default_rng(3)
    page = np.full((500, 1100), 235, np.uint8)
    page[200:240, 700:900] = rng.integers(0, 60, (40, 200))  # dark marks where an amount might be
    data = io.BytesIO()
    Image.fromarray(page).save(data, "PNG")
    reading = read_document(data.getvalue(), CHEQUE, recognizer)
    amount = reading.main
    assert reading.needs_review and amount.needs_review
    assert amount.review_reasons == ("amount_box_not_found",)
    assert amount.text == "" and amount.box is None and reading.text == ""


def test_date_digits_are_not_the_amount(mnist, recognizer):
    """Without its currency sign the box is still found; the date, the cheque number and the
    MICR line (all digits) are never read instead."""
    rng = np.random.default_rng(11)
    for template in TEMPLATES:
        spec = ChequeSpec(template, dpi=200, currency="$", style="us", jpeg_quality=None)
        cheque = render_cheque(spec, mnist.x_test, mnist.y_test, rng)
        reading = read_document(cheque.image, CHEQUE, recognizer)
        assert reading.main.box is not None
        assert _overlap(reading.main.box, cheque.box, 1.0) > 0.7, template.name


def test_rotation_resolution_and_jpeg(mnist, recognizer):
    rng = np.random.default_rng(5)
    for dpi, rotation, quality in ((150, -2.0, 55), (300, 2.0, 70), (220, 1.2, None)):
        spec = ChequeSpec(TEMPLATES[0], dpi=dpi, currency="€", style="eu_space",
                          rotation=rotation, jpeg_quality=quality, uneven_light=True)  # fmt: skip
        cheque = render_cheque(spec, mnist.x_test, mnist.y_test, rng)
        reading = read_document(cheque.image, CHEQUE, recognizer)
        assert reading.main.box is not None
        assert _overlap(reading.main.box, cheque.box, 1.0) > 0.6
        assert reading.width == round(TEMPLATES[0].size[0] * dpi)


def test_a_dotted_continuation_is_followed_and_a_clean_end_is_not():
    page = np.zeros((60, 600), np.uint8)
    page[30, 100:300] = 255  # the stretch the opening kept
    page[31, 300:400:2] = 255  # a dotted continuation, a pixel lower: half the columns inked
    page[30, 40:94] = 255  # ink left of the line, but past a gap of six clean columns
    line = _Line(100, 300, 30.0, 0.0, 1.0)
    [grown] = _grown_all([line], page)
    assert (grown.x0, grown.x1) == (100, 395)  # up to the first window less than half inked
    assert _grown_all([line], page[:, :299])[0].x1 == 300  # nothing beyond


def _double_outline(one_x: int) -> np.ndarray:
    """A 72 px cut of a box printed with a double outline: a thin outer box at the cut's edge
    and a thick inner one whose sides span 78% of the cut's height, a written 1 at `one_x`."""
    crop = np.full((72, 180), 230, np.uint8)
    crop[[0, 71], :], crop[:, [0, 179]] = 90, 90  # outer
    crop[9:11, 8:172], crop[61:63, 8:172] = 40, 40  # inner top and bottom
    crop[9:63, 8:10], crop[9:63, 170:172] = 40, 40  # inner sides: 56 of 72 rows inked
    crop[20:56, one_x : one_x + 3] = 20  # a handwritten 1: shorter than the inner box
    return crop


def test_a_double_outline_is_painted_out_and_a_written_one_beside_it_is_not():
    """The inner box's sides are printed lines even though they span only 78% of the cut
    (FRAME_COVER is 80%: they span the inner box); a written 1 near a side spans less and is
    kept."""
    crop = _double_outline(one_x=13)
    painted = _inside_frame(crop)
    assert (painted[:, :10] > 200).all() and (painted[:, 170:] > 200).all()
    assert (painted[20:56, 13:16] == 20).all()


def test_a_label_above_an_underlined_amount_is_painted_out_whatever_its_letters_tops():
    """A printed label over the band ("Amount") ends in its upper 40%: painted as paper, its
    lower-case letters too (they start lower than a capital); the digits on the line stay."""
    band = np.full((72, 160), 225, np.uint8)
    band[6:20, 4:7] = 60  # a capital, from near the top
    band[13:20, 9:14], band[13:20, 16:21] = 60, 60  # lower-case letters: they start lower
    band[36:62, 30:34], band[36:62, 60:66] = 30, 30  # the amount, written on the line
    band[66:68, :] = 50  # the underline
    clean = _without_top_marks(band)
    assert (clean[:28] > 200).all()
    assert (clean[36:62, 30:34] == 30).all() and (clean[36:62, 60:66] == 30).all()


def test_an_underlined_amount_is_read_from_just_past_its_sign():
    """The amount may start left of where its underline starts: the band begins just right of
    the currency sign, never on it; an underline reaching left of the sign keeps its start."""
    sign = _Word(100, 60, 112, 76)
    short = _Candidate(None, _Line(130, 300, 80.0, 0.0, 2.0), sign, 1.9)
    box = _amount_box(short, factor=2.0).box
    assert box.x == 2 * (sign.x1 + PAD)
    long = _Candidate(None, _Line(110, 300, 80.0, 0.0, 2.0), sign, 1.9)
    assert _amount_box(long, factor=2.0).box.x == 2 * (110 - PAD)
