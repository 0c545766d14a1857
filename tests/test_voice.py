"""Voice on real parts: PortAudio capturing from file-backed ALSA devices playing espeak-ng speech,
Silero VAD and faster-whisper tiny.en transcribing it, espeak-ng speaking replies."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import sys
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from engine.config import VoiceSettings
from voice.errors import VoiceError

pytestmark = pytest.mark.voice

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def voice(audio, speech_model, tmp_path):
    from voice.session import Voice

    return Voice(VoiceSettings(stt_model=str(speech_model), input_device="filemic"), tmp_path)


def test_devices_are_listed_with_their_rates(audio) -> None:
    from voice.capture import input_devices

    names = {d.name for d in input_devices()}
    assert {"filemic", "filemic48", "silentmic", "noisymic"} <= names
    assert all(d.default_rate > 0 for d in input_devices())


def same_question(text: str) -> bool:
    """The question as tiny.en hears espeak-ng say it: its words, give or take "Answer", which it
    sometimes hears as "And some" depending on the exact samples."""
    words = text.lower()
    return "what is the capital of france" in words and "in one word" in words


def test_question_from_the_microphone_is_transcribed(voice, caplog) -> None:
    caplog.set_level("INFO", logger="hearth.voice")
    heard = voice.listen(threading.Event())
    # transcribing began at the pause, before the recording ended, and that transcript was used
    assert "used the transcript started at the pause" in caplog.text
    assert same_question(heard.text)
    # the pause after the question ended the recording (VAD), long before max_seconds
    assert heard.transcript.audio_s < 8 and heard.transcript.speech_s > 2


def test_a_48khz_device_transcribes_the_same(voice) -> None:
    from voice.capture import Recorder, find_device
    from voice.listen import record

    recorder = Recorder(find_device("filemic48"), max_seconds=20, rates=(48000,))
    audio16 = record(recorder, threading.Event()).audio
    assert recorder.rate == 48000
    assert same_question(voice.transcriber().transcribe(audio16).text)
    assert same_question(voice.listen(threading.Event()).text)


@pytest.mark.parametrize("name", ["wav22050", "wav48000"])
def test_files_at_other_rates_transcribe_the_same(voice, audio, name) -> None:
    assert same_question(voice.transcribe_file(audio[name]).text)


@pytest.mark.parametrize("device", ["silentmic", "noisymic"])
def test_silence_and_noise_give_no_text(voice, device) -> None:
    heard = voice.with_device(device).listen(threading.Event())
    assert heard.text == ""
    assert heard.transcript.speech_s < 0.3


def test_stop_and_cancel(voice) -> None:
    stop = threading.Event()
    stop.set()  # pressed again at once: a recording of (almost) nothing
    assert voice.listen(stop).text == ""
    cancel = threading.Event()
    cancel.set()
    heard = voice.listen(threading.Event(), cancel)
    assert heard.text == "" and heard.transcript.audio_s == 0


def test_missing_device_names_the_real_ones(voice) -> None:
    with pytest.raises(VoiceError, match=r"no input device 'usb-mic'.*filemic"):
        voice.with_device("usb-mic").listen(threading.Event())


def test_device_that_refuses_every_rate(audio) -> None:
    from voice.capture import Recorder, find_device

    device = dataclasses.replace(find_device("filemic"), default_rate=2.0)  # PortAudio refuses 1-3 Hz
    with pytest.raises(VoiceError, match="refuses every sample rate tried.*1 Hz.*2 Hz"):
        Recorder(device, rates=(1,)).start()


def test_missing_or_corrupt_speech_model(audio, speech_model, tmp_path) -> None:
    from voice.session import Voice

    with pytest.raises(VoiceError, match="not a CTranslate2 speech model directory"):
        Voice(VoiceSettings(stt_model=str(tmp_path / "nothing-here")), tmp_path).transcriber()
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in speech_model.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.bin").write_bytes(b"\x00" * 1000)
    with pytest.raises(VoiceError, match="cannot load the speech model"):
        Voice(VoiceSettings(stt_model=str(broken)), tmp_path).transcriber()


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300, cwd=REPO, env=env or os.environ.copy())


def _config(tmp_path: Path, speech_model: Path, device: str = "filemic") -> dict:
    config = tmp_path / "voice.toml"
    config.write_text(f'[voice]\nstt_model = "{speech_model}"\ninput_device = "{device}"\n')
    return {**os.environ, "HEARTH_CONFIG": str(config)}


def test_cli_devices_and_test(audio, speech_model, tmp_path) -> None:
    env = _config(tmp_path, speech_model)
    devices = _cli("voice", "devices", env=env)
    assert devices.returncode == 0 and "filemic48" in devices.stdout and "Hz" in devices.stdout
    assert f"microphone in use: filemic on {os.uname().nodename} (this machine" in devices.stdout
    recorded = _cli("voice", "test", env=env)
    assert recorded.returncode == 0, recorded.stderr
    assert "capital of France" in recorded.stdout and "transcribed in" in recorded.stderr
    from_file = _cli("voice", "test", "--file", str(audio["wav48000"]), env=env)
    assert "capital of France" in from_file.stdout


@pytest.mark.model
def test_cli_ask_listen_answers_the_spoken_question(audio, speech_model, gguf_path, tmp_path) -> None:
    env = _config(tmp_path, speech_model)
    done = _cli("ask", "--listen", "--model", str(gguf_path), "--temperature", "0", "--max-tokens", "16", env=env)
    assert done.returncode == 0, done.stderr
    assert "heard: What is the capital of France?" in done.stderr
    assert "Paris" in done.stdout


def test_cli_silence_and_bad_device_are_one_line(audio, speech_model, tmp_path, gguf_path) -> None:
    silent = _cli("ask", "--listen", "--model", str(gguf_path), env=_config(tmp_path, speech_model, "silentmic"))
    missing = _cli("voice", "test", env=_config(tmp_path, speech_model, "usb-mic"))
    for done, message in ((silent, "didn't catch that"), (missing, "no input device 'usb-mic'")):
        err = done.stderr.strip().splitlines()
        assert done.returncode == 1 and message in err[-1] and err[-1].startswith("hearth: ")
        assert "Traceback" not in done.stderr and "ALSA lib" not in done.stderr


def test_no_microphone_over_ssh_says_where_audio_is_captured(tmp_path, speech_model) -> None:
    empty = tmp_path / "empty-asound.conf"
    empty.write_text("</usr/share/alsa/alsa.conf>\n")  # no sound card here: no capture device
    env = {**_config(tmp_path, speech_model, ""), "ALSA_CONFIG_PATH": str(empty), "SSH_CONNECTION": "10.0.0.2 5 10.0.0.1 22"}
    done = _cli("voice", "test", env=env)
    assert done.returncode == 1
    assert "no microphone on" in done.stderr and "over SSH, hearth records on the machine it runs on" in done.stderr
    assert "`hearth connect` from your own computer uses its microphone" in done.stderr
    assert "ALSA lib" not in done.stderr and "Traceback" not in done.stderr


# -- speaking ------------------------------------------------------------------------------------

SPLITS = [
    ("Dr. Smith paid $3.50 for it. Then he left! Did he?", ["Dr. Smith paid $3.50 for it.", "Then he left!", "Did he?"]),
    ("Pi is 3.14159, roughly. The end.", ["Pi is 3.14159, roughly.", "The end."]),
    ("Use e.g. a kettle, i.e. hot water. Done.", ["Use e.g. a kettle, i.e. hot water.", "Done."]),
    ("Steps:\n1. Open the file.\n2. Read it\n- **bold** item", ["Steps:", "Open the file.", "Read it", "bold item"]),
    ("Code:\n```python\nprint('a. b. c.')\n```\nThat prints.", ["Code:", "(code block)", "That prints."]),
    ("# Title\nSee [docs](https://x.org) and `ls -l`. Ok", ["Title", "See docs and ls -l.", "Ok"]),
    ("J. R. R. Tolkien wrote it in 1937. Yes.", ["J. R. R. Tolkien wrote it in 1937.", "Yes."]),
    ("| a | b |\n| 1 | 2 |", ["a , b", "1 , 2"]),
]


@pytest.mark.parametrize("text, sentences", SPLITS)
@pytest.mark.parametrize("piece", [1, 4, 1000])
def test_sentence_splitting_for_speech(text, sentences, piece) -> None:
    from voice.speak import SentenceSplitter

    splitter = SentenceSplitter()
    out = []
    for i in range(0, len(text), piece):
        out.extend(splitter.feed(text[i:i + piece]))
    out.extend(splitter.flush())
    assert out == sentences


@pytest.mark.model
def test_reply_is_spoken_sentence_by_sentence_while_it_streams(backend, tmp_path) -> None:
    import time

    from engine.chat.backend import GenerationParams
    from voice.speak import SentenceSplitter, Speaker

    speaker = Speaker("espeak-ng", output_dir=tmp_path)
    splitter = SentenceSplitter()
    messages = [{"role": "user", "content": "Tell me three short facts about the Moon."}]
    first_audio_during_reply = False
    for event in backend.stream(messages, GenerationParams(temperature=0, max_tokens=120), threading.Event()):
        for sentence in splitter.feed(event.text):
            speaker.say(sentence)
        if (tmp_path / "001.wav").exists() and event.finish_reason is None:
            first_audio_during_reply = True
        time.sleep(0.05)  # tokens at a Pi-class 20 a second (the first sentence ends near token 13 of 59); the speaker works alongside
    for sentence in splitter.flush():
        speaker.say(sentence)
    assert speaker.idle.wait(60)
    speaker.close()
    wavs = sorted(tmp_path.glob("*.wav"))
    assert len(wavs) >= 2 and len(wavs) == len(speaker.spoken)
    assert first_audio_during_reply
    for path in wavs:
        with wave.open(str(path)) as w:
            assert w.getnframes() > 1000 and w.getframerate() == 22050


def test_missing_tts_program_is_a_clear_error() -> None:
    from voice.speak import Speaker

    with pytest.raises(VoiceError, match="piper is not installed"):
        Speaker("piper")


# -- the audio link (voice over SSH; the SSH side is in test_voice_ssh.py) ----------------------------


def test_link_carries_the_microphones_samples_unchanged(audio, tmp_path: Path) -> None:
    """A relay serving the file-backed microphone on an owner-only socket; the link's recorder
    reads exactly the device's 16 kHz samples, and stops when the relay reaches max_seconds."""
    from voice.link import AudioLink
    from voice.relay import Relay

    relay = Relay(input_device="filemic")
    path = tmp_path / "audio.sock"
    server = relay.listen(path)
    stop = threading.Event()
    thread = threading.Thread(target=relay.serve, args=(server, stop), daemon=True)
    thread.start()
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        recorder = AudioLink(str(path)).recorder(max_seconds=2.0)
        assert recorder.microphone().startswith("filemic on ") and recorder.microphone().endswith("(over SSH)")
        recorder.start()
        blocks = []
        while not (recorder.ended and recorder._queue.empty()):
            blocks += recorder.take(timeout=0.1)
        recorder.stop()
    finally:
        stop.set()
        server.close()
        thread.join(timeout=2)
    got = np.concatenate(blocks)
    expected = np.fromfile(audio["question16"], dtype="<i2").astype(np.float32) / 32768
    assert len(got) == 32000  # 2 s at 16 kHz: the relay's device stopped at max_seconds
    assert np.array_equal(got[: len(expected)], expected[:32000])
