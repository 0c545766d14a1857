"""``hearth doctor``: one line per thing hearth needs, each problem with its fix.

Statuses: ``ok``; ``warn`` for what only an optional feature needs (voice, spoken replies) or what
works but could be better (a llama.cpp build that leaves CPU features unused); ``FAIL`` for what
stops chatting (no llama.cpp, a model that does not fit, a broken config, a damaged history).
The exit status is 1 when anything failed. No check can crash the others: a check that raises
becomes its own FAIL line.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine import cpu, paths
from engine.config import Settings, load_settings, with_overrides
from engine.errors import HearthError
from tui.commands.output import say

GIB = 1024**3
LOW_DISK = 2 * GIB
"""Less free space than this under the models or KV-state directory is a warning: the smallest
useful chat models are 0.1-1 GiB, and a saved KV state of a long chat tens of MiB."""


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    status: str  # "ok", "warn" or "FAIL"
    topic: str
    text: str
    fix: str = ""

    def line(self) -> str:
        fix = f" (fix: {self.fix})" if self.fix else ""
        return f"{self.status:4}  {self.topic:10}  {self.text}{fix}"


def run_doctor(args: argparse.Namespace) -> int:
    """Print the report; 0 when nothing failed, 1 otherwise. Raises nothing."""
    settings, config = _config()
    try:
        settings = with_overrides(settings, model__path=getattr(args, "model", None),
                                  model__n_ctx=getattr(args, "n_ctx", None),
                                  voice__audio_socket=getattr(args, "audio_socket", None))
    except HearthError as exc:
        config = Finding("FAIL", "config", exc.message)
    checks: list[tuple[str, Callable[[], Finding]]] = [
        ("python", _python),
        ("llama.cpp", _llama),
        ("model", lambda: _model(settings)),
        ("config", lambda: config),
        ("history", _history),
        ("microphone", lambda: _microphone(settings)),
        ("speech", lambda: _speech_out(settings)),
        ("disk", _disk),
    ]
    failed = False
    for topic, check in checks:
        try:
            finding = check()
        except Exception as exc:  # noqa: BLE001 - one check's surprise must not hide the rest
            finding = Finding("FAIL", topic, f"the check itself failed: {type(exc).__name__}: {exc}")
        failed |= finding.status == "FAIL"
        say(finding.line())
    return 1 if failed else 0


def _config() -> tuple[Settings, Finding]:
    try:
        settings = load_settings()
    except HearthError as exc:
        return Settings(), Finding("FAIL", "config", exc.message, "correct it, or `hearth config path` to find it")
    where = paths.config_path()
    text = f"{where}" if where.exists() else f"defaults (no {where}; `hearth config init` writes one)"
    return settings, Finding("ok", "config", text)


def _python() -> Finding:
    system = platform.system()
    try:
        release = platform.freedesktop_os_release().get("PRETTY_NAME", system)
    except OSError:
        release = platform.platform()
    import psutil

    text = (f"Python {platform.python_version()} on {release}, {platform.machine()}, "
            f"{os.cpu_count()} CPUs, {psutil.virtual_memory().total / GIB:.1f} GiB RAM")
    return Finding("ok", "python", text)  # an older Python cannot import hearth at all


def _llama() -> Finding:
    wrong = cpu.build_runs_here()
    if wrong:
        return Finding("FAIL", "llama.cpp", wrong)
    try:
        import llama_cpp
    except (ImportError, OSError) as exc:
        return Finding("FAIL", "llama.cpp", f"llama-cpp-python does not load: {exc}", "scripts/setup.sh")
    machine, flags = cpu.this_machine()
    info = llama_cpp.llama_print_system_info().decode()
    report = cpu.build_report(info, machine, flags)
    text = f"llama-cpp-python {llama_cpp.__version__}: {report}"
    if cpu.unused_features(machine, flags, cpu.build_features(info)):
        return Finding("warn", "llama.cpp", text, "scripts/setup.sh builds it for this CPU "
                       "(pipx/uv: README, 'Install as a tool')")
    return Finding("ok", "llama.cpp", text)


def _model(settings: Settings) -> Finding:
    from engine.models.discover import resolve_model_path
    from engine.models.estimate import mib
    from engine.models.fit import check_fits
    from engine.models.gguf import check_gguf_file

    path = resolve_model_path(settings, paths.models_dir())
    if path is None:
        return Finding("warn", "model", f"no model in {paths.models_dir()} yet",
                       "./run.sh fetches the starter model, or `hearth models recommend`")
    try:
        check_gguf_file(path)
        estimate = check_fits(path, settings.model.n_ctx)
    except HearthError as exc:
        return Finding("FAIL", "model", exc.message)
    return Finding("ok", "model", f"{path.name} fits: needs {mib(estimate.needed)} at n_ctx {settings.model.n_ctx}")


def _history() -> Finding:
    path = paths.history_db_path()
    if not path.exists():
        return Finding("ok", "history", f"no chats yet ({path} is made on the first one)")
    fix = (f"move it aside (mv {path} {path}.damaged) and hearth starts a new one; "
           f"`sqlite3 {path}.damaged .recover` may save the chats")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            result = [row[0] for row in db.execute("PRAGMA integrity_check")]
            chats = db.execute("SELECT count(*) FROM chats").fetchone()[0] if result == ["ok"] else 0
        finally:
            db.close()
    except sqlite3.Error as exc:
        return Finding("FAIL", "history", f"{path} is damaged: {exc}", fix)
    if result != ["ok"]:
        first = next((r for r in result if not r.startswith("***")), result[0])
        return Finding("FAIL", "history", f"{path} is damaged: integrity_check: {first}", fix)
    return Finding("ok", "history", f"{chats} chats, integrity_check ok ({path})")


def _microphone(settings: Settings) -> Finding:
    from voice.capture import find_device, input_devices, sounddevice
    from voice.errors import VoiceError

    if settings.voice.audio_socket:  # under hearth connect: the other machine's microphone
        from voice.link import AudioLink

        try:
            info = AudioLink(settings.voice.audio_socket).info()
        except VoiceError as exc:
            return Finding("warn", "microphone", exc.message, "reconnect with hearth connect")
        if info.input is None:
            return Finding("warn", "microphone", f"{info.input_error}")
        return Finding("ok", "microphone", f"push-to-talk records from {info.microphone()}")

    try:
        sounddevice()
        devices = input_devices()
        if not devices:
            return Finding("warn", "microphone", "no input device: push-to-talk cannot record",
                           "connect a microphone (`hearth voice devices` lists them)")
        chosen = find_device(settings.voice.input_device or None)
    except VoiceError as exc:
        return Finding("warn", "microphone", exc.message)
    return Finding("ok", "microphone", f"{len(devices)} input devices; push-to-talk records from "
                   f"{chosen.name} ({chosen.default_rate:.0f} Hz)")


def _speech_out(settings: Settings) -> Finding:
    tts = settings.voice.tts
    found = shutil.which(tts)
    if not found:
        hint = "sudo apt-get install espeak-ng" if tts == "espeak-ng" else "pip install piper-tts"
        return Finding("warn", "speech", f"{tts} is not installed: replies cannot be spoken", hint)
    if tts == "piper" and not Path(settings.voice.piper_model).expanduser().is_file():
        return Finding("warn", "speech", f"piper has no voice file ({settings.voice.piper_model or 'none set'})",
                       "set voice.piper_model to a .onnx voice")
    return Finding("ok", "speech", f"spoken replies with {tts} ({found})")


def _disk() -> Finding:
    models = paths.models_dir()
    kv = paths.kv_state_dir()
    kv.mkdir(parents=True, exist_ok=True)
    free_models = shutil.disk_usage(models).free
    free_kv = shutil.disk_usage(kv).free
    text = f"{free_models / GIB:.1f} GiB free for models ({models}), {free_kv / GIB:.1f} GiB for KV states"
    if min(free_models, free_kv) < LOW_DISK:
        return Finding("warn", "disk", text, "free some space: models and saved chats need room")
    return Finding("ok", "disk", text)
