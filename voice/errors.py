"""Voice errors: one clear line each; text chat keeps working."""

from __future__ import annotations

from engine.errors import HearthError


class VoiceError(HearthError):
    """Capture, the speech model or speech output failed (PortAudio missing, no microphone, a
    device that refuses every rate or disappears, a missing or corrupt speech model, no TTS)."""

    title = "Voice"
