"""The field review threshold: the operating point most likely to keep both limits."""

from training.fields_eval import choose_field_threshold


def _rows(confidences_right, others=0, refused=0):
    singles = [({"text": "1", "confidence": 0.99, "other": False, "flagged": False,
                 "digits": 1}, "1")] * 10  # fmt: skip
    multi = [({"text": "12" if right else "17", "confidence": c, "other": False, "digits": 2},
              "12") for c, right in confidences_right]  # fmt: skip
    flagged = [({"text": "12", "confidence": 0.999, "other": True, "digits": 2}, "12")] * others
    gone = [({"text": None, "confidence": 0.0, "other": True, "refused": "no_digits"}, "12")]
    rows = singles + multi + flagged + gone * refused
    return [r for r, _ in rows], [t for _, t in rows]


READINGS = [(0.99, True), (0.98, True), (0.97, True), (0.96, True), (0.95, False),
            (0.94, True), (0.93, True), (0.92, True), (0.91, False), (0.90, True)]  # fmt: skip


def test_the_threshold_balances_the_share_flagged_against_the_error_accepted():
    rows, truths = _rows(READINGS)
    # Accepting down to 0.92: 2 of 20 flagged (10%, all the budget), 1 of 18 wrong (5.6% of a
    # 5% tolerance); one field more lets the second error in (2 of 19: 10.5%), one less
    # flags 15% for the same error.
    assert choose_field_threshold(rows, truths, max_flagged=0.10, max_error=0.05) == 0.92
    # A tolerance for more errors buys fewer flags; a tighter one stops above the first error.
    assert choose_field_threshold(rows, truths, max_flagged=0.10, max_error=0.20) == 0.90
    assert choose_field_threshold(rows, truths, max_flagged=0.50, max_error=0.01) == 0.96


def test_fields_flagged_for_other_reasons_or_refused_count_against_the_budget():
    rows, truths = _rows(READINGS, others=4, refused=2)
    # 6 of 26 are flagged whatever the threshold: accepting every open field costs least.
    assert choose_field_threshold(rows, truths, max_flagged=0.10, max_error=0.10) == 0.90


def test_room_is_counted_in_standard_errors_not_in_shares_of_the_limits():
    # 1,000 amounts by falling confidence, wrong at ranks 100, 400, 700 and just past 900.
    wrong = {100, 400, 700, 905, 915, 925}
    rows = [{"text": "17" if k in wrong else "12", "confidence": round(0.9999 - k * 0.0001, 4),
             "other": False, "digits": 2} for k in range(1000)]  # fmt: skip
    truths = ["12"] * 1000
    # Accepting 915 (8.5% flagged, 4 wrong: 0.44%) leaves the most room as shares of the
    # limits, but only 0.3 standard errors of it under 0.5% wrong (1.7 under 10% flagged).
    # Accepting 905 (9.5% flagged, 3 wrong: 0.33%) leaves 0.5 and 0.8: likelier to keep both.
    assert choose_field_threshold(rows, truths) == 0.9095
