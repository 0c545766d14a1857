"""A chat as a file: JSON (every message with role, text, time and status: round-trips) or
Markdown (to read or share). The text is the stored text, unchanged: a file is not a terminal;
whoever prints it to one makes it inert first."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from engine.chat.history import HistoryError, HistoryStore

FORMATS = ("md", "json")
ROLE_NAMES = {"user": "You", "assistant": "hearth", "system": "System"}
STATUS_NOTES = {"stopped": "(stopped)", "error": "(failed)", "streaming": "(interrupted)"}


def _iso(seconds: float) -> str:
    """Unix seconds as ISO 8601 in UTC, to the second."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="seconds")


def export_chat(store: HistoryStore, chat_id: int, fmt: str) -> str:
    """Chat ``chat_id`` as ``fmt`` ("md" or "json").

    JSON: ``{"id", "title", "model", "updated_at", "messages": [{"role", "content", "status",
    "created_at"}]}``, times as ISO 8601 UTC strings.

    Raises:
        HistoryError: no such chat, or the database cannot be read.
        ValueError: an unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    chat = store.get_chat(chat_id)
    if chat is None:
        raise HistoryError(f"there is no chat {chat_id} (`hearth history list` shows them)")
    messages = store.messages(chat_id)
    if fmt == "json":
        return json.dumps({
            "id": chat.id, "title": chat.title, "model": chat.model, "updated_at": _iso(chat.updated_at),
            "messages": [{"role": m.role, "content": m.content, "status": m.status,
                          "created_at": _iso(m.created_at)} for m in messages],
        }, ensure_ascii=False, indent=1) + "\n"
    lines = [f"# {chat.title}", "", f"_{chat.model or 'model unknown'} · {_iso(chat.updated_at)}_", ""]
    for m in messages:
        note = f" {STATUS_NOTES[m.status]}" if m.status in STATUS_NOTES else ""
        lines += [f"**{ROLE_NAMES.get(m.role, m.role)}** · {_iso(m.created_at)}{note}", "", m.content, ""]
    return "\n".join(lines)
