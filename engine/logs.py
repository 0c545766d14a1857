"""hearth's log file, and llama.cpp's native log routed into it.

llama.cpp writes its log through a callback (``llama_log_set``); hearth installs one that hands
each line to the ``hearth.llama`` logger, so nothing native reaches the terminal and no file
descriptor is redirected (llama-cpp-python's ``verbose=False`` redirects fds 1 and 2 to /dev/null
while it loads, which blanks a running TUI).
"""

from __future__ import annotations

import ctypes
import io
import logging
import os
from pathlib import Path
from typing import Any

from engine.sanitize import inert

LOGGER = logging.getLogger("hearth")
_LLAMA_LOGGER = logging.getLogger("hearth.llama")

# enum ggml_log_level in the ggml.h that llama-cpp-python 0.3.36 ships:
# 0 NONE, 1 DEBUG, 2 INFO, 3 WARN, 4 ERROR, 5 CONT (continues the previous line's level).
_GGML_LEVELS = {0: logging.CRITICAL, 1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}

_callback: Any = None  # kept referenced: ctypes frees a callback that nothing holds
_pending = ""
_pending_level = logging.INFO
first_native_error = ""
"""The first ERROR line llama.cpp logged since it was last cleared (shown when a model fails to
load: "tensor 'token_embd.weight' data is not within the file bounds")."""


class InertFormatter(logging.Formatter):
    """Log lines with untrusted text made inert (file names, a GGUF's ``general.name`` in
    llama.cpp's own lines, server replies): a log read with ``cat`` or ``tail -f`` in a terminal
    must not run escape sequences. Newlines stay (tracebacks)."""

    def format(self, record: logging.LogRecord) -> str:
        return inert(super().format(record))


def configure_logging(path: Path, level: int = logging.INFO) -> None:
    """Send the ``hearth`` logger to ``path`` (created mode 0600). Idempotent."""
    if any(getattr(h, "_hearth", False) for h in LOGGER.handlers):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    handler = logging.FileHandler(path, encoding="utf-8")
    handler._hearth = True  # type: ignore[attr-defined]
    handler.setFormatter(InertFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    LOGGER.addHandler(handler)
    LOGGER.setLevel(level)
    LOGGER.propagate = False


def route_llama_log(llama_cpp: Any) -> bool:
    """Install the llama.cpp log callback (replacing llama-cpp-python's, which prints to stderr).
    True the first time (it was installed now), False after."""
    global _callback
    if _callback is not None:
        return False

    @llama_cpp.llama_log_callback
    def _on_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        global _pending, _pending_level, first_native_error
        if level != 5:
            _pending_level = _GGML_LEVELS.get(level, logging.INFO)
        _pending += text.decode("utf-8", errors="replace")
        while "\n" in _pending:
            line, _pending = _pending.split("\n", 1)
            if line.strip():
                _LLAMA_LOGGER.log(_pending_level, line)
                if _pending_level >= logging.ERROR and not first_native_error:
                    first_native_error = line.strip()

    _callback = _on_log
    llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
    return True


class LogWriter(io.TextIOBase):
    """A text stream that writes to the log: for Python-level prints of native-library wrappers."""

    def __init__(self, logger: logging.Logger = _LLAMA_LOGGER) -> None:
        self._logger = logger

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self._logger.info(line)
        return len(text)
