"""The one place untrusted text becomes safe to show: model output, server replies (error bodies,
model ids), file names, GGUF metadata, pastes, stored history, transcripts. Every path to the
terminal (the TUI, the CLI's stdout and stderr) and to the log goes through :func:`inert`.

Untrusted text may carry ESC, CSI, OSC 52 (clipboard write), OSC 0 (window title), DCS sequences,
or bidirectional overrides that make a line read differently from what it is (U+202E, "Trojan
Source", CVE-2021-42574). Each such character is replaced by a visible stand-in, one character for
one, so a sequence split across streamed tokens is neutralised too (no state needed):

- C0 controls become their Unicode "Control Pictures" (ESC -> U+241B ␛, BEL -> U+2407 ␇), DEL
  becomes U+2421 ␡; newline and tab are kept unless the text must stay on one line.
- C1 controls (U+0080-U+009F: the 8-bit CSI U+009B, OSC U+009D, DCS U+0090) become U+FFFD.
- Bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) and the
  direction marks (U+200E, U+200F, U+061C) become U+FFFD: Unicode's list of bidi controls
  (UAX #9, table 4).
- Line and paragraph separators (U+2028, U+2029) become U+2424 ␤ (a terminal may break lines on
  them).

Textual markup is a second danger, handled where text meets a widget: untrusted text is given to
widgets with markup off (``markup=False``, or a plain ``Content``/``Text``), never parsed.
"""

from __future__ import annotations

_KEEP = {0x09, 0x0A}
_BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]

_TABLE: dict[int, str] = {c: chr(0x2400 + c) for c in range(0x20) if c not in _KEEP}
_TABLE[0x7F] = "\u2421"
_TABLE.update({c: "\ufffd" for c in range(0x80, 0xA0)})
_TABLE.update({c: "\ufffd" for c in _BIDI})
_TABLE.update({0x2028: "\u2424", 0x2029: "\u2424"})

_ONE_LINE = {**_TABLE, 0x09: "\u2409", 0x0A: "\u2424"}


def inert(text: str, one_line: bool = False) -> str:
    """Return ``text`` with every terminal control and bidi control replaced by a visible
    stand-in (see the module docstring). Same length as the input.

    Args:
        text: untrusted text.
        one_line: also make newline and tab visible (U+2424 ␤, U+2409 ␉), for places that hold
            one line: the status bar, titles, list rows, a CLI error line.
    """
    return text.translate(_ONE_LINE if one_line else _TABLE)
