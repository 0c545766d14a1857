"""Make untrusted model output inert for a terminal.

Model text may contain ESC, CSI, OSC 52 (clipboard write) or OSC 0 (window title) sequences. Every
control character except newline and tab is replaced by a visible stand-in, one character for one,
so a sequence split across tokens is neutralised too (no state needed): C0 controls become their
Unicode "Control Pictures" (ESC -> U+241B), DEL becomes U+2421, C1 controls (U+0080-U+009F, which
include the 8-bit CSI U+009B and OSC U+009D) become U+FFFD.
"""

from __future__ import annotations

_KEEP = {0x09, 0x0A}
_TABLE: dict[int, str] = {c: chr(0x2400 + c) for c in range(0x20) if c not in _KEEP}
_TABLE[0x7F] = "\u2421"
_TABLE.update({c: "\ufffd" for c in range(0x80, 0xA0)})


def inert(text: str) -> str:
    """Return ``text`` with every terminal control character replaced by a visible stand-in.

    Same length as the input; newlines and tabs are kept.
    """
    return text.translate(_TABLE)
