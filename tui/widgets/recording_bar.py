"""The push-to-talk indicator: recording dot, elapsed seconds, a live input level meter."""

from __future__ import annotations

from textual.widgets import Static

METER = "▁▂▃▄▅▆▇█"
FLOOR_DB = -60.0
"""Levels at or below this (dBFS) show as the lowest bar."""


def meter(dbfs: float, width: int = 12) -> str:
    """A bar of ``width`` cells for a level in dBFS (-60..0)."""
    fill = max(0.0, min(1.0, (dbfs - FLOOR_DB) / -FLOOR_DB))
    cells = fill * width
    full = int(cells)
    partial = METER[int((cells - full) * (len(METER) - 1))] if full < width else ""
    return (METER[-1] * full + partial).ljust(width, " ")


class RecordingBar(Static):
    """Hidden unless recording or transcribing."""

    DEFAULT_CSS = """
    RecordingBar { height: 1; margin: 0 1; color: $error; display: none; }
    RecordingBar.-active { display: block; }
    """

    def __init__(self, key_hint: str = "ctrl+r") -> None:
        super().__init__("", id="recording", markup=False)
        self.key_hint = key_hint

    def recording(self, seconds: float, dbfs: float) -> None:
        self.add_class("-active")
        self.update(f"● REC {seconds:4.1f} s  {meter(dbfs)} {dbfs:5.0f} dB   "
                    f"{self.key_hint} stops · pause stops · Esc cancels")

    def transcribing(self) -> None:
        self.add_class("-active")
        self.update("… transcribing")

    def hide(self) -> None:
        self.remove_class("-active")
