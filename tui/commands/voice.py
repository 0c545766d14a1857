"""``hearth voice devices|test`` and the listening half of ``hearth ask --listen``."""

from __future__ import annotations

import argparse
import dataclasses
import socket
import sys
import threading
from pathlib import Path

from engine import paths
from engine.config import Settings
from tui.commands.output import say
from voice.errors import VoiceError


def run_voice(args: argparse.Namespace, settings: Settings) -> int:
    """Raises:
        VoiceError: PortAudio, devices, the speech model, an unreadable file."""
    # voice capture and speech-to-text need numpy and PortAudio: loaded only for `hearth voice`
    from voice.capture import find_device, input_devices
    from voice.session import Voice

    if args.action == "devices":
        if settings.voice.audio_socket:
            return _link_devices(settings.voice.audio_socket)
        devices = input_devices()
        if not devices:
            raise VoiceError("no input devices")
        for d in devices:
            mark = "*" if d.is_default else " "
            say(f"{mark} {d.index:3}  {d.name}  ({d.channels} ch, default {d.default_rate:.0f} Hz)")
        try:
            say(f"microphone in use: {find_device(settings.voice.input_device).name} on {socket.gethostname()} "
                "(this machine; voice.input_device)")
        except VoiceError as error:
            say(f"microphone in use: none ({error.message})")
        return 0
    voice = Voice(settings.voice, paths.models_dir())
    if args.file:
        heard = voice.transcribe_file(Path(args.file))
        how = f"{args.file}"
    else:
        if args.seconds:
            voice = Voice(dataclasses.replace(settings.voice, max_seconds=args.seconds), paths.models_dir())
        say("hearth: listening… (stops when you pause)", file=sys.stderr)
        voice.transcriber()  # load first, so the timing below is the transcription alone
        heard = voice.listen(threading.Event())
        how = "microphone"
    t = heard.transcript
    say(t.text if t.text else "(didn't catch that)")
    say(f"hearth: {how}: {t.audio_s:.2f} s of audio, {t.speech_s:.2f} s of speech, "
          f"transcribed in {heard.stop_to_text_s:.3f} s", file=sys.stderr)
    return 0


def _link_devices(path: str) -> int:
    """``hearth voice devices`` under ``hearth connect``: the other machine's devices in use.

    Raises:
        VoiceError: the audio link is not reachable."""
    from voice.link import AudioLink

    info = AudioLink(path).info()
    say(f"microphone in use: {info.input} on {info.host} (over SSH, through {path})" if info.input
        else f"microphone in use: none on {info.host} ({info.input_error})")
    say(f"speaker in use: {info.output} on {info.host} (over SSH)" if info.output
        else f"speaker in use: none on {info.host} ({info.output_error})")
    return 0


def listen_for_question(settings: Settings) -> str:
    """Record one question from the microphone (ends when the speaker pauses).

    Raises:
        VoiceError: as :meth:`voice.session.Voice.listen`, or nothing was heard.
    """
    from voice.session import Voice  # numpy and PortAudio: only for `hearth ask --listen`

    voice = Voice(settings.voice, paths.models_dir())
    voice.transcriber()
    say("hearth: listening… (stops when you pause)", file=sys.stderr)
    heard = voice.listen(threading.Event())
    if not heard.text:
        raise VoiceError("didn't catch that: nothing but silence or noise was heard")
    say(f"hearth: heard: {heard.text}", file=sys.stderr)
    return heard.text
