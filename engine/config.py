"""Launch config: a TOML file validated into frozen, typed settings.

Every field is documented where it is declared; ``config.example.toml`` repeats each key with its
default. Unknown keys are errors that name the nearest valid key (difflib), syntax errors name the
line (from ``tomllib``'s message). Command-line flags override the file through
:func:`with_overrides`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from engine.errors import ConfigError
from engine.paths import config_path


@dataclass(frozen=True)
class ModelSettings:
    """``[model]``: which GGUF to load and how llama.cpp runs it."""

    path: str = ""
    """Path of the GGUF file. Empty: the largest ``*.gguf`` in hearth's models directory."""

    n_ctx: int = 4096
    """Context window in tokens (prompt + reply). llama.cpp allocates the KV cache for all of it."""

    n_threads: int = 0
    """Threads for token generation; 0 means the machine's physical cores."""

    n_batch: int = 512
    """Prompt-processing batch size in tokens."""

    seed: int = 0xFFFFFFFF
    """Sampling seed; 4294967295 (llama.cpp's LLAMA_DEFAULT_SEED) picks a random seed."""

    check_fit: bool = True
    """Refuse to load a model whose memory estimate (weights + KV cache + compute + overhead) is
    over what this machine can give (MemAvailable, or a cgroup's memory.max, minus a margin)."""

    state_cache_mib: int = 512
    """Disk space (MiB) for chats' saved KV caches, so a reopened chat answers without processing
    its history again; the least recently saved are deleted first. 0 disables saving."""


@dataclass(frozen=True)
class ChatSettings:
    """``[chat]``: sampling and the conversation defaults."""

    system_prompt: str = "You are a helpful assistant running offline on a small machine. Be concise."
    """System prompt sent first in every chat; never dropped when the context fills up."""

    temperature: float = 0.7
    """Sampling temperature; 0 is greedy (deterministic)."""

    top_p: float = 0.95
    """Nucleus sampling: keep the smallest set of tokens whose probability sums to top_p."""

    max_tokens: int = 1024
    """Most tokens one reply may have; also the room kept free in the context window for it."""


@dataclass(frozen=True)
class UISettings:
    """``[ui]``: how the terminal UI looks and how hard it works."""

    theme: str = "hearth-dark"
    """Theme name: hearth-dark, hearth-light, or any built-in Textual theme."""

    max_fps: int = 15
    """Most redraws per second of a streaming reply; low keeps SSH links and small CPUs free."""

    cpu_budget: float = 0.02
    """Share of one core the UI may use while a reply streams; redraws slow down to stay under
    it, but never below 10 a second (tui.frame_pacer.MAX_INTERVAL_S). 0 disables the limit
    (max_fps only)."""

    cursor_blink: bool = False
    """Blink the prompt's cursor. Off by default: a blinking cursor redraws twice a second."""


@dataclass(frozen=True)
class VoiceSettings:
    """``[voice]``: push-to-talk speech in, spoken answers out."""

    stt_model: str = "tiny.en"
    """Speech-to-text model: a name (tiny.en, base.en, small.en, ...) kept in hearth's model store,
    or the path of a local CTranslate2 Whisper model directory."""

    input_device: str = ""
    """Microphone: a device name (or part of it) or index from `hearth voice devices`; empty for
    the system default."""

    output_device: str = ""
    """Speaker for audio hearth plays itself (Piper, and the laptop side of ``hearth connect``): a
    device name (or part of it) or index; empty for the system default."""

    audio_socket: str = ""
    """A Unix socket carrying another machine's microphone and speaker (voice/link.py), set by
    ``hearth connect`` through ``--audio-socket``; empty: this machine's devices."""

    push_to_talk_key: str = "ctrl+r,f5"
    """Key(s) that start and stop a recording (Textual key names, comma-separated)."""

    auto_send: bool = False
    """Send the transcript at once instead of leaving it in the prompt to check first."""

    speak: bool = False
    """Speak replies aloud, sentence by sentence, while they stream."""

    tts: str = "espeak-ng"
    """Speech output program: espeak-ng or piper."""

    piper_model: str = ""
    """The .onnx voice file for Piper (tts = "piper")."""

    silence_ms: int = 800
    """A pause this long after speech ends the recording (voice-activity detection)."""

    max_seconds: int = 30
    """The longest recording, and the longest audio file ``hearth voice test --file`` takes, seconds."""

    stt_threads: int = 1
    """CPU threads for speech-to-text; the rest stay with llama.cpp."""


@dataclass(frozen=True)
class EndpointSettings:
    """``[endpoints.NAME]``: an OpenAI-compatible server (llama-server, Ollama, vLLM, LM Studio)."""

    url: str = ""
    """Base URL of the API, including ``/v1`` (``http://192.168.1.20:8080/v1``). Required."""

    model: str = ""
    """Model id to ask for; empty: the first model the server lists at ``/v1/models``."""

    api_key_env: str = ""
    """Name of the environment variable holding the API key (the key itself is never stored in
    the config, the history or the log). Empty: no key is sent."""

    verify: bool = True
    """Verify the server's TLS certificate. ``false`` is insecure and hearth warns about it."""

    connect_timeout: float = 5.0
    """Seconds to wait for the connection."""

    read_timeout: float = 60.0
    """Seconds to wait for the next piece of the reply (the first includes the server's prompt
    processing); keep-alive comments do not count, so a server that sends only those is stalled."""

    n_ctx: int = 8192
    """The server's context window in tokens (servers do not report it); used to trim history."""

    fallback: str = ""
    """``"local"``: when the server cannot be reached, offer the local model instead."""


@dataclass(frozen=True)
class ModelsSettings:
    """``[models]``: choosing models for this machine."""

    min_tokens_per_s: float = 8.0
    """Recommend only models predicted to generate at least this many tokens/s here (about 6
    words a second: faster than most people read)."""


@dataclass(frozen=True)
class Settings:
    """All launch settings. Frozen: runtime state (the chosen chat, the model in use) lives elsewhere."""

    model: ModelSettings = field(default_factory=ModelSettings)
    chat: ChatSettings = field(default_factory=ChatSettings)
    ui: UISettings = field(default_factory=UISettings)
    voice: VoiceSettings = field(default_factory=VoiceSettings)
    models: ModelsSettings = field(default_factory=ModelsSettings)
    endpoints: dict[str, EndpointSettings] = field(default_factory=dict)
    """Named remote servers, ``[endpoints.NAME]``."""
    presets: dict[str, ChatSettings] = field(default_factory=dict)
    """Named chat settings, ``[presets.NAME]``: the keys of ``[chat]`` (system_prompt,
    temperature, top_p, max_tokens); a key a preset leaves out is the ``[chat]`` value. The
    empty name holds ``[chat]`` itself, to go back to (:func:`use_preset`), when there are any."""
    preset: str = ""
    """The preset in use (``--preset``, or picked in the app); empty: ``[chat]`` itself."""


_SECTION_TYPES = {"model": ModelSettings, "chat": ChatSettings, "ui": UISettings, "voice": VoiceSettings,
                  "models": ModelsSettings, "endpoints": dict, "presets": dict}


def load_settings(path: Path | None = None) -> Settings:
    """Read and validate the config file.

    Args:
        path: the TOML file; defaults to :func:`engine.paths.config_path`. A missing file at the
            default location gives the defaults; a missing file named explicitly (or through
            ``HEARTH_CONFIG``) is an error.

    Raises:
        ConfigError: unreadable file, TOML syntax error (message names the line), unknown
            section or key (message names the nearest valid one), or a value of the wrong type
            or out of range.
    """
    explicit = path is not None or bool(os.environ.get("HEARTH_CONFIG"))
    path = path or config_path()
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {path} does not exist")
        return Settings()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib names the line ("at line 3, column 7"), except at the end of the document.
        where = str(exc).replace("at end of document", f"at end of document, line {len(text.splitlines())}")
        raise ConfigError(f"{path}: TOML syntax error: {where}") from None
    return settings_from_dict(raw, source=str(path))


def settings_from_dict(raw: dict[str, Any], source: str = "config") -> Settings:
    """Validate a parsed TOML table into :class:`Settings`.

    Raises:
        ConfigError: unknown section or key, wrong type, or value out of range.
    """
    sections: dict[str, Any] = {}
    for name, table in raw.items():
        if name == "endpoints" and isinstance(table, dict):
            sections[name] = _build_endpoints(table, source)
            continue
        if name == "presets" and isinstance(table, dict):
            continue  # after [chat], whose values they inherit
        if name not in _SECTION_TYPES:
            raise ConfigError(f"{source}: unknown section [{name}]{_nearest(name, _SECTION_TYPES)}")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        sections[name] = _build_section(name, _SECTION_TYPES[name], table, source)
    presets = raw.get("presets", {})
    if not isinstance(presets, dict):
        raise ConfigError(f"{source}: [presets] must be a table of [presets.NAME] tables")
    sections["presets"] = _build_presets(presets, sections.get("chat", ChatSettings()), source)
    voice = sections.get("voice")
    if voice is not None and voice.tts not in ("espeak-ng", "piper"):
        raise ConfigError(f"{source}: voice.tts must be \"espeak-ng\" or \"piper\", got {voice.tts!r}")
    return Settings(**sections)


def _build_endpoints(tables: dict[str, Any], source: str) -> dict[str, EndpointSettings]:
    endpoints = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [endpoints.{name}] must be a table")
        endpoint = _build_section(f"endpoints.{name}", EndpointSettings, table, source)
        if not endpoint.url.startswith(("http://", "https://")):
            raise ConfigError(f"{source}: endpoints.{name}.url must start with http:// or https://")
        if endpoint.fallback not in ("", "local"):
            raise ConfigError(f"{source}: endpoints.{name}.fallback must be \"local\" or empty")
        endpoints[name] = endpoint
    return endpoints


def _build_presets(tables: dict[str, Any], chat: ChatSettings, source: str) -> dict[str, ChatSettings]:
    presets: dict[str, ChatSettings] = {"": chat} if tables else {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: [presets.{name}] must be a table")
        own = _build_section(f"presets.{name}", ChatSettings, table, source)  # checks keys and ranges
        presets[name] = dataclasses.replace(chat, **{k: getattr(own, k) for k in table})
    return presets


def use_preset(settings: Settings, name: str) -> Settings:
    """``settings`` chatting with preset ``name`` (``""``: ``[chat]`` itself, as the file has it).

    Raises:
        ConfigError: no such preset (the message names the nearest one, or the ones there are).
    """
    if not name:
        return dataclasses.replace(settings, chat=settings.presets.get("", ChatSettings()), preset="")
    if name not in settings.presets:
        known = ", ".join(sorted(n for n in settings.presets if n)) or "none: add [presets.NAME] to the config"
        near = _nearest(name, [n for n in settings.presets if n])
        raise ConfigError(f"unknown preset {name!r}{near or f' (presets: {known})'}")
    return dataclasses.replace(settings, chat=settings.presets[name], preset=name)


def with_overrides(settings: Settings, **overrides: Any) -> Settings:
    """Return settings with command-line flags applied; ``None`` values are ignored.

    Keys are ``"section.key"`` written as ``section__key`` (``model__path="x.gguf"``).

    Raises:
        ConfigError: an override fails the same validation as the file.
    """
    result = settings
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, key = dotted.split("__", 1)
        current = getattr(result, section)
        table = dataclasses.asdict(current) | {key: value}
        new_section = _build_section(section, type(current), table, "command line")
        result = dataclasses.replace(result, **{section: new_section})
    return result


def _build_section(name: str, cls: type, table: dict[str, Any], source: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            raise ConfigError(f"{source}: unknown key {name}.{key}{_nearest(key, fields)}")
        expected = str(fields[key].type)  # a string: these modules use `from __future__ import annotations`
        values[key] = _check_type(f"{name}.{key}", value, expected, source)
    section = cls(**values)
    _check_ranges(name, section, source)
    return section


_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _check_type(key: str, value: Any, expected: str, source: str) -> Any:
    want = _TYPES[expected]
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if want is int and isinstance(value, bool) or not isinstance(value, want):
        raise ConfigError(f"{source}: {key} must be {expected}, got {value!r}")
    return value


def _check_ranges(name: str, section: Any, source: str) -> None:
    rules: dict[str, tuple[float, float]] = {
        "n_ctx": (64, 1 << 20),
        "n_threads": (0, 1024),
        "n_batch": (1, 1 << 16),
        "temperature": (0.0, 5.0),
        "top_p": (0.0, 1.0),
        "max_tokens": (1, 1 << 20),
        "max_fps": (1, 120),
        "cpu_budget": (0.0, 1.0),
        "min_tokens_per_s": (0.0, 10000.0),
        "seed": (0, 0xFFFFFFFF),
        "state_cache_mib": (0, 1 << 30),
        "silence_ms": (100, 10_000),
        "max_seconds": (1, 600),
        "stt_threads": (1, 64),
        "connect_timeout": (0.1, 3600.0),
        "read_timeout": (0.1, 3600.0),
    }
    for key, (low, high) in rules.items():
        if hasattr(section, key):
            value = getattr(section, key)
            if not low <= value <= high:
                raise ConfigError(f"{source}: {name}.{key} = {value} is outside {low:g}..{high:g}")


def _nearest(word: str, candidates: Any) -> str:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def default_toml() -> str:
    """The default settings as a TOML document (what ``hearth config init`` writes).

    Values are written with ``json.dumps``: for str, int, float and bool its output is also a
    valid TOML value.
    """
    import json

    lines = ["# hearth config: every key is documented in config.example.toml", ""]
    for name, section in dataclasses.asdict(Settings()).items():
        if name in ("endpoints", "presets") or not isinstance(section, dict):
            continue
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in section.items())
        lines.append("")
    return "\n".join(lines)
