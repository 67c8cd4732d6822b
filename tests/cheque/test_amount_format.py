"""The amount's format check: separators that make no amount send the reading to review."""

import pytest

from recognition.cheque import amount_format_problem
from recognition.fields import Box, Separator

BOX = Box(0, 0, 1, 1)


def _read(written: str) -> tuple[int, list[Separator]]:
    """Digits and separators (with positions) as the field reader reports a written amount."""
    digits, separators = 0, []
    for char in written:
        if char.isdigit():
            digits += 1
        else:
            separators.append(Separator(char, BOX, digits))
    return digits, separators


@pytest.mark.parametrize(
    "written",
    ["125000", "1,250.00", "1 250,00", "1.250,00", "1'250.00", "12,345,678.90", "907-", "907",
     "1250.00", "5,84", "1,250", " 42.50 ", "125.-"],
)  # fmt: skip
def test_amounts_as_people_write_them_pass(written):
    assert not amount_format_problem(*_read(written))


@pytest.mark.parametrize(
    "written",
    # a lost digit, an extra one, a mark read twice, a digit taken for a slash or a dash
    ["1 62.00", "2.5.1", "11 11", "40/52-", "1,25.00", "1,250 000.00", "12-50", "1234,567.00"],
)
def test_separators_that_make_no_amount_are_flagged(written):
    assert amount_format_problem(*_read(written))
