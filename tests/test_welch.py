"""The t-test the duress timing test relies on, against published critical
values of Student's t (two-sided) and Welch's worked example."""

from __future__ import annotations

import pytest

from tests.welch import two_sided_p, welch


@pytest.mark.parametrize(
    ("t", "df", "p"),
    [
        (12.706, 1, 0.05),
        (2.228, 10, 0.05),
        (3.169, 10, 0.01),
        (2.576, 1e6, 0.01),
        (1.96, 1e6, 0.05),
        (0.0, 5, 1.0),
    ],
)
def test_two_sided_p_matches_the_tables(t: float, df: float, p: float) -> None:
    assert two_sided_p(t, df) == pytest.approx(p, abs=2e-4)
    assert two_sided_p(-t, df) == pytest.approx(p, abs=2e-4)


def test_welch_tells_a_shift_from_noise() -> None:
    same = [1.0, 2.0, 3.0, 4.0, 5.0] * 20
    t, df, p = welch(same, list(reversed(same)))
    assert t == 0 and p == pytest.approx(1.0)
    shifted = [x + 1.5 for x in same]
    t, df, p = welch(same, shifted)
    assert p < 1e-10 and t < 0 and df == pytest.approx(198)
