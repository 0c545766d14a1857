"""hearth's built-in Textual themes.

Colours are picked so that a terminal with only 16 colours (``TERM=linux``), where Textual maps
each to its nearest ANSI colour, still shows light text on black (dark) or black on white (light)
and a distinct accent: the near-black / near-white backgrounds map to ANSI black / white, the
accents to bright cyan / blue.
"""

from __future__ import annotations

from textual.theme import Theme

HEARTH_DARK = Theme(
    name="hearth-dark",
    primary="#5FAFD7",
    secondary="#D7875F",
    accent="#FFAF5F",
    foreground="#E4E4E4",
    background="#121212",
    surface="#1C1C1C",
    panel="#262626",
    success="#87D787",
    warning="#FFD75F",
    error="#FF5F5F",
    dark=True,
)

HEARTH_LIGHT = Theme(
    name="hearth-light",
    primary="#005F87",
    secondary="#AF5F00",
    accent="#AF5F00",
    foreground="#1C1C1C",
    background="#FFFFFF",
    surface="#F2F2F2",
    panel="#E4E4E4",
    success="#005F00",
    warning="#875F00",
    error="#AF0000",
    dark=False,
)

BUILTIN_THEMES: tuple[Theme, ...] = (HEARTH_DARK, HEARTH_LIGHT)
