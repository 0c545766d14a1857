"""``hearth history list|show|search|export``: past chats from the terminal.

Everything a chat holds is untrusted text (model output, pastes): it reaches the terminal only
through ``inert``. An export written to a file (``-o``) is the stored text, unchanged.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path

from engine import paths
from engine.chat.export import ROLE_NAMES, STATUS_NOTES, export_chat
from engine.chat.history import HistoryError, HistoryStore, snippet_parts
from engine.sanitize import inert
from tui.commands.output import say

BOLD, PLAIN = "\x1b[1m", "\x1b[0m"


def when(seconds: float) -> str:
    """Unix seconds as local ``YYYY-MM-DD HH:MM``."""
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


def run_history(args: argparse.Namespace) -> int:
    """Run ``hearth history ACTION``; returns the exit status.

    Raises:
        HistoryError: the database cannot be read, or no chat has the given id.
    """
    store = HistoryStore(paths.history_db_path())
    try:
        if args.action == "list":
            chats = store.list_chats()
            for chat in chats:
                say(f"{chat.id:5}  {when(chat.updated_at)}  {chat.n_messages:4} messages  {chat.title}")
            if not chats:
                say("no chats yet", file=sys.stderr)
        elif args.action == "show":
            found = store.get_chat(args.id)
            if found is None:
                raise HistoryError(f"there is no chat {args.id} (`hearth history list` shows them)")
            say(f"# {found.title}  ({when(found.updated_at)}, {found.model or 'model unknown'})")
            for m in store.messages(args.id):
                note = f" {STATUS_NOTES[m.status]}" if m.status in STATUS_NOTES else ""
                print()
                say(f"{ROLE_NAMES.get(m.role, m.role)} · {when(m.created_at)}{note}")
                print(inert(m.content))
        elif args.action == "search":
            return _search(store, " ".join(args.words))
        else:
            text = export_chat(store, args.id, args.format)
            if args.output:
                Path(args.output).write_text(text, encoding="utf-8")
                say(f"hearth: chat {args.id} written to {args.output}", file=sys.stderr)
            else:
                sys.stdout.write(inert(text))
        return 0
    finally:
        store.close()


def _search(store: HistoryStore, words: str) -> int:
    """Print each matching message: chat id, date, title, who, and a snippet; 1 when none."""
    hits = store.search(words)
    bold = sys.stdout.isatty() and os.environ.get("NO_COLOR") is None
    for hit in hits:
        head = inert(f"{hit.chat_id:5}  {when(hit.created_at)}  {hit.chat_title}  "
                     f"{ROLE_NAMES.get(hit.role, hit.role)}: ", one_line=True)
        print(head + highlighted(hit.snippet, bold))
    if not hits:
        say(f"hearth: no message contains {words!r}", file=sys.stderr)
        return 1
    return 0


def highlighted(snippet: str, bold: bool) -> str:
    """A search snippet on one inert line, its matches in bold (on a terminal) or as they are."""
    out = []
    for piece, match in snippet_parts(snippet):
        text = inert(piece, one_line=True)
        out.append(f"{BOLD}{text}{PLAIN}" if bold and match else text)
    return "".join(out)
