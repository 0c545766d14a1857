"""Voice over SSH against a local microphone, in one run, on real parts: the same espeak-ng
utterances (bench/voice_latency.py's three, about 2, 4 and 8 seconds) played in real time from
file-backed ALSA devices, recorded with hearth's VAD auto-stop

- locally: PortAudio in this process, as `hearth` on the machine with the microphone;
- over SSH: a real sshd on 127.0.0.1 (tests/sshd.py), `hearth connect`'s own connection code
  (control master, owner-only remote directory, ``-R`` socket forward), the relay in its own
  process capturing from the device, and this process as the Pi reading the forwarded socket.

Figures (medians of 3 per utterance, seconds):
- stop -> transcript: from the moment the recording stops (VAD) to the text;
- end of speech -> transcript: from the moment the last word was captured (the device's clock:
  the relay's start + the samples before it) — what a user feels, transport included;
- stop -> first token: the above + the chat model's time to first token (SmolLM2 Q4_1, cold KV).
Target: over SSH within 50 ms of local.

Run: .venv/bin/python -m bench.voice_ssh
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.voice_latency import CACHE, REPEATS, UTTERANCES, install_devices, paced_recorder, speech
from engine.chat.backend import GenerationParams, TokenEvent
from engine.chat.llama import LlamaBackend
from engine.chat.session import ChatSession
from engine.config import Settings, VoiceSettings
from engine.models.starter import ensure_starter_model
from voice.speech_model import ensure_tiny_en
from voice.stt import Transcriber

LEAD_SAMPLES = 4800
"""The silence before each utterance on its device (install_devices), samples at 16 kHz."""
TARGET_S = 0.050


def paced_relay(argv: list[str]) -> int:
    """The laptop's relay with devices paced to real time; prints ``t0 SECONDS`` (perf_counter,
    the system's monotonic clock) when each recording starts."""
    from voice.relay import main

    def factory(device: str, max_seconds: float):
        recorder = paced_recorder(device)
        start = recorder.start

        def started() -> None:
            start()
            print(f"t0 {recorder._t0!r}", flush=True)

        recorder.start = started  # type: ignore[method-assign]
        return recorder

    return main(argv, recorder_factory=factory)


def first_token_s(llm: LlamaBackend, text: str) -> float:
    """Seconds from now to the reply's first token, with no KV cache left (the whole prompt)."""
    session = ChatSession(llm, None, Settings().chat.system_prompt)
    llm._llm.reset()
    started = time.perf_counter()
    for event in session.send(text, GenerationParams(temperature=0, max_tokens=8), threading.Event()):
        if isinstance(event, TokenEvent) and event.text:
            return time.perf_counter() - started
    return float("nan")


def main() -> None:
    from tests.sshd import HOST_ALIAS, sshd
    from tui.commands.connect import SshConnection
    from voice.session import Voice

    model_dir = ensure_tiny_en(CACHE / "whisper" / "tiny.en")
    shared = Transcriber(model_dir, threads=1)
    shared.load()
    llm = LlamaBackend(ensure_starter_model(CACHE), n_ctx=2048, seed=1)
    llm.load()
    remote_hearth = str(Path(sys.executable).parent / "hearth")
    print("faster-whisper tiny.en int8 (1 thread); SmolLM2-135M Q4_1; OpenSSH", _ssh_version(), "on 127.0.0.1\n")
    print(f"{'utterance':>9} {'path':>6} {'stop->text':>11} {'speech end->text':>17} {'stop->1st token':>16}  transcript")
    rows: dict[str, dict[str, list[float]]] = {"local": {}, "ssh": {}}
    with tempfile.TemporaryDirectory(prefix="hv-") as tmp:
        tmp_dir = Path(tmp)
        devices = install_devices(tmp_dir)
        with sshd(tmp_dir / "sshd") as server:
            for text, device in zip(UTTERANCES, devices, strict=True):
                samples = len(speech(text, tmp_dir))
                seconds = samples / 16000
                settings = VoiceSettings(stt_model=str(model_dir), input_device=device)
                with SshConnection(server.ssh.split(), HOST_ALIAS) as connection:
                    connection.start_relay(Settings(voice=settings), [sys.executable, "-m", "bench.voice_ssh", "relay"])
                    connection.open()
                    _, remote_socket = connection.prepare_remote(remote_hearth)
                    assert connection.relay is not None and connection.relay.stdout is not None
                    for path in ("local", "ssh"):
                        voice = Voice(settings if path == "local" else VoiceSettings(
                            stt_model=str(model_dir), audio_socket=remote_socket), tmp_dir)
                        voice._transcriber = shared
                        figures: dict[str, list[float]] = {"stop": [], "speech": [], "token": []}
                        transcript = ""
                        for _ in range(REPEATS):
                            recorder = paced_recorder(device) if path == "local" else voice.recorder()
                            heard = voice.listen(threading.Event(), recorder=recorder)
                            ready = time.perf_counter()
                            t0 = recorder._t0 if path == "local" else float(connection.relay.stdout.readline().split()[1])
                            transcript = heard.text
                            figures["stop"].append(heard.stop_to_text_s)
                            figures["speech"].append(ready - (t0 + (LEAD_SAMPLES + samples) / 16000))
                            figures["token"].append(heard.stop_to_text_s + first_token_s(llm, heard.text))
                        medians = {k: statistics.median(v) for k, v in figures.items()}
                        for k, v in medians.items():
                            rows[path].setdefault(k, []).append(v)
                        print(f"{seconds:8.1f}s {path:>6} {medians['stop']:11.3f} {medians['speech']:17.3f} "
                              f"{medians['token']:16.3f}  {transcript!r}")
    llm.close()
    print()
    worst = 0.0
    for key, name in (("stop", "stop -> transcript"), ("speech", "end of speech -> transcript"),
                      ("token", "stop -> first token")):
        gaps = [s - loc for s, loc in zip(rows["ssh"][key], rows["local"][key], strict=True)]
        worst = max(worst, *gaps)
        print(f"{name:>28}: SSH - local = {', '.join(f'{g * 1000:+.0f} ms' for g in gaps)}")
    print(f"\nworst SSH - local: {worst * 1000:+.0f} ms (target: at most +{TARGET_S * 1000:.0f} ms) — "
          f"{'met' if worst <= TARGET_S else 'NOT met'}")


def _ssh_version() -> str:
    import subprocess

    return subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.split(",")[0].strip()


if __name__ == "__main__":
    if sys.argv[1:2] == ["relay"]:
        raise SystemExit(paced_relay(sys.argv[2:]))
    main()
