"""Run the real HearthApp on a ScriptedBackend whose reply is argv[1] (escape sequences written
as Python escapes are decoded). Used by the tmux test of untrusted output."""

import sys

from engine import paths
from engine.chat.history import HistoryStore
from engine.config import Settings
from tests.scripted_backend import ScriptedBackend
from tui.app import HearthApp

if __name__ == "__main__":
    reply = sys.argv[1].encode().decode("unicode_escape")
    HearthApp(Settings(), ScriptedBackend(reply), HistoryStore(paths.history_db_path())).run()
