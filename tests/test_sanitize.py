"""Model output is made inert for the terminal."""

import pytest

from engine.sanitize import inert


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text\nnext line\tTab", "plain text\nnext line\tTab"),
        ("\x1b[31mred\x1b[0m", "\u241b[31mred\u241b[0m"),
        ("\x1b]52;c;aGVsbG8=\x07", "\u241b]52;c;aGVsbG8=\u2407"),  # OSC 52 clipboard write
        ("\x1b]0;pwned\x1b\\", "\u241b]0;pwned\u241b\\"),  # OSC 0 window title
        ("\x9b31m", "\ufffd31m"),  # 8-bit CSI
        ("bell\x07 del\x7f cr\r", "bell\u2407 del\u2421 cr\u240d"),
        ("naïve café ✓ 日本", "naïve café ✓ 日本"),
    ],
)
def test_inert(raw: str, shown: str) -> None:
    assert inert(raw) == shown
    assert len(inert(raw)) == len(raw)


def test_split_sequence_is_inert_piece_by_piece() -> None:
    pieces = ["\x1b", "]52;c;", "ZXZpbA==", "\x07"]
    joined = "".join(inert(p) for p in pieces)
    assert "\x1b" not in joined and "\x07" not in joined


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("abc\u202edcba", "abc\ufffddcba"),  # right-to-left override (Trojan Source)
        ("\u2066x\u2069 \u200f \u061c", "\ufffdx\ufffd \ufffd \ufffd"),  # isolates and marks
        ("a\u2028b", "a\u2424b"),
        ("\x90qDCS\x1b\\", "\ufffdqDCS\u241b\\"),  # 8-bit DCS
    ],
)
def test_bidi_and_separators_are_visible(raw: str, shown: str) -> None:
    assert inert(raw) == shown


def test_one_line_makes_newlines_and_tabs_visible() -> None:
    assert inert("model\nname\tx", one_line=True) == "model\u2424name\u2409x"
    assert inert("model\nname\tx") == "model\nname\tx"
