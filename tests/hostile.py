"""Hostile text for the robustness tests: what a model, a server, a file name, a GGUF's metadata,
a paste or a tampered history database may carry, and the check that it arrived inert."""

from __future__ import annotations

from pathlib import Path

import numpy as np

BIDI = {chr(c) for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))}
FORBIDDEN = {chr(c) for c in range(0x20) if c not in (0x09, 0x0A)} | {chr(c) for c in range(0x7F, 0xA0)} | BIDI
"""What must never reach a terminal or the log from untrusted text: C0 controls but newline and
tab, DEL, C1 controls, bidi controls."""

PAYLOADS: dict[str, tuple[str, tuple[bytes, ...]]] = {
    "osc52-clipboard": ("copy \x1b]52;c;SEVBUlRI\x07 me", (b"\x1b]52;",)),
    "osc0-title": ("\x1b]0;PWNED-TITLE\x07title", (b"\x1b]0;PWNED",)),
    "osc-st-title": ("\x1b]2;PWNED-TITLE2\x1b\\t2", (b"\x1b]2;PWNED",)),
    "csi-colour": ("\x1b[31;7mHOSTILE\x1b[0m", (b"\x1b[31;7mHOSTILE",)),
    "dcs": ("\x1bPq#0;2;0;0;0\x1b\\dcs", (b"\x1bPq#0",)),
    "c1-csi": ("eight\x9b31mbit", ("\x9b".encode(),)),
    "bidi-override": ("user\u202etxt.exe", ("\u202e".encode(),)),
    "bidi-isolate": ("a\u2066b\u2069c\u200f", ("\u2066".encode(), "\u200f".encode())),
    "bell-nul-del": ("ring\x07\x00\x7fend", (b"ring\x07",)),
    "markup-close": ("What does [/INST] mean? [/]", ()),
    "markup-click": ('[@click="app.quit"]x[/] [link=file:///etc/passwd]l[/link]', ()),
    "markup-valid": ("TOML [model] section [bold red]red[/bold red]", ()),
    "newline-tab": ("line one\nline\ttwo\r\nthree", ()),
}
"""name -> (text, byte sequences that must not appear in what hearth writes to a terminal)."""


def forbidden_in(text: str) -> list[str]:
    """The forbidden characters in ``text`` (empty: inert)."""
    return sorted({c for c in text if c in FORBIDDEN})


def file_safe(text: str) -> str:
    """``text`` usable as a file name on Linux (no NUL, no slash)."""
    return text.replace("\x00", "").replace("/", "_")


def gguf_named(path: Path, name: str) -> Path:
    """A small GGUF whose ``general.name`` is ``name`` (llama architecture numbers and one tensor:
    its header reads, llama.cpp refuses to load it)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_block_count(1)
    writer.add_context_length(256)
    writer.add_embedding_length(64)
    writer.add_feed_forward_length(128)
    writer.add_head_count(4)
    writer.add_head_count_kv(4)
    writer.add_file_type(2)
    writer.add_tensor("token_embd.weight", np.zeros((16, 64), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
