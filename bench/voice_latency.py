"""Voice latency, in one run, on real parts: espeak-ng utterances of about 2, 4 and 8 seconds,
played in real time into PortAudio from file-backed ALSA devices (the device itself is unclocked,
so the recorder hands blocks on at the pace a microphone would), recorded by hearth with its VAD
auto-stop.

Figures:
- stop-to-transcript, from the moment the recording stops: hearth (transcription started at the
  pause, Silero VAD trim, beam 1, no timestamps, no conditioning, ``voice.stt_threads`` = 1)
  against the plain faster-whisper call with default settings on the same recording once it has
  stopped (``WhisperModel(dir, compute_type="int8").transcribe(audio)``), medians of 3; also the
  same tuned call without the head start;
- stop -> first token of the reply (hearth's stop-to-transcript + the chat model's time to first
  token);
- stop -> first spoken audio (+ the first sentence synthesized by espeak-ng, written to a WAV
  file: playing starts when it is written).

Run: .venv/bin/python -m bench.voice_latency
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from engine.chat.backend import GenerationParams, TokenEvent
from engine.chat.llama import LlamaBackend
from engine.chat.session import ChatSession
from engine.config import Settings
from engine.models.starter import ensure_starter_model
from voice.speak import SentenceSplitter, Speaker
from voice.speech_model import ensure_tiny_en
from voice.stt import Transcriber

CACHE = Path.home() / ".cache" / "hearth-test"
UTTERANCES = [
    "What time is it in Tokyo?",
    "What is the capital of France? Answer in one word, please.",
    "I am planning a trip to the mountains next week. What should I pack for cold and rainy "
    "weather, and how many days of food should I bring?",
]
REPEATS = 3


def speech(text: str, directory: Path):
    from faster_whisper import decode_audio

    from tests.voicefixtures import espeak_wav

    return decode_audio(str(espeak_wav(text, directory / f"{abs(hash(text))}.wav")), sampling_rate=16000)


def paced_recorder(device_name: str):
    """A real PortAudio recorder whose blocks are handed on no faster than real time."""
    from voice.capture import Recorder, find_device

    class Paced(Recorder):
        def start(self) -> None:
            super().start()
            self._t0, self._released, self._pending = time.perf_counter(), 0, []

        def take(self, timeout: float = 0.1) -> list:
            self._pending += super().take(timeout=0)
            allowed = (time.perf_counter() - self._t0) * self.rate
            out = []
            while self._pending and self._released + len(self._pending[0]) <= allowed:
                block = self._pending.pop(0)
                self._released += len(block)
                out.append(block)
            if not out:
                time.sleep(0.005)
            return out

        @property
        def ended(self) -> bool:
            return super().ended and not self._pending and self._queue.empty()

        @property
        def seconds(self) -> float:
            return self._released / self.rate if self.rate else 0.0

    return Paced(find_device(device_name), max_seconds=20)


def install_devices(directory: Path) -> list[str]:
    """One ALSA capture device per utterance (0.3 s of silence, the words, then silence)."""
    import os

    import numpy as np

    from tests.voicefixtures import write_raw

    blocks = ["</usr/share/alsa/alsa.conf>"]
    names = []
    for i, text in enumerate(UTTERANCES):
        audio = np.concatenate([np.zeros(4800, dtype=np.float32), speech(text, directory),
                                np.zeros(16000 * 3, dtype=np.float32)])
        raw = write_raw(audio, directory / f"utterance{i}.raw")
        blocks.append(f'pcm.utterance{i} {{\n type file\n slave.pcm "null"\n file "/dev/null"\n'
                      f' infile "{raw}"\n format "raw"\n}}')
        names.append(f"utterance{i}")
    (directory / "asound.conf").write_text("\n".join(blocks) + "\n")
    os.environ["ALSA_CONFIG_PATH"] = str(directory / "asound.conf")  # before PortAudio loads
    return names


def main() -> None:
    from faster_whisper import WhisperModel

    from engine.config import VoiceSettings
    from voice.session import Voice

    model_dir = ensure_tiny_en(CACHE / "whisper" / "tiny.en")
    ours = Transcriber(model_dir, threads=1)
    ours.load()
    plain = WhisperModel(str(model_dir), device="cpu", compute_type="int8")
    llm = LlamaBackend(ensure_starter_model(CACHE), n_ctx=2048, seed=1)
    llm.load()
    print(f"faster-whisper tiny.en int8, {model_dir}; chat model SmolLM2-135M Q4_1; TTS espeak-ng\n")
    print(f"{'utterance':>9} {'hearth (s)':>11} {'no head start (s)':>18} {'default call (s)':>17} {'speedup':>8}  "
          f"{'-> first token (s)':>19} {'-> first audio (s)':>19}  transcript")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        devices = install_devices(tmp_dir)
        for text, device in zip(UTTERANCES, devices, strict=True):
            audio = speech(text, tmp_dir)
            seconds = len(audio) / 16000
            voice = Voice(VoiceSettings(stt_model=str(model_dir), input_device=device), tmp_dir)
            voice._transcriber = ours  # the loaded model, shared with the other columns
            ours_s, cold_s, plain_s, first_token_s, first_audio_s = [], [], [], [], []
            transcript = ""
            for repeat in range(REPEATS):
                heard = voice.listen(threading.Event(), recorder=paced_recorder(device))
                ours_s.append(heard.stop_to_text_s)
                transcript = heard.text
                recorded = np.concatenate([np.zeros(4800, dtype=np.float32), audio,
                                           np.zeros(int(16000 * 0.8), dtype=np.float32)])
                started = time.perf_counter()
                ours.transcribe(recorded)
                cold_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                segments, _ = plain.transcribe(recorded)
                " ".join(s.text for s in segments)
                plain_s.append(time.perf_counter() - started)
                # stop -> first token and -> first spoken audio: the transcript above, then the reply
                out = tmp_dir / f"speak-{seconds:.0f}-{repeat}"
                out.mkdir()
                speaker, splitter = Speaker("espeak-ng", output_dir=out), SentenceSplitter()
                session = ChatSession(llm, None, Settings().chat.system_prompt)
                llm._llm.reset()  # no KV cache left from the previous repeat: the whole prompt is processed
                started = time.perf_counter() - heard.stop_to_text_s  # back-dated to the stop
                first = None
                for event in session.send(heard.text, GenerationParams(temperature=0, max_tokens=60), threading.Event()):
                    if isinstance(event, TokenEvent) and event.text:
                        first = first or time.perf_counter() - started
                        for sentence in splitter.feed(event.text):
                            speaker.say(sentence)
                for sentence in splitter.flush():
                    speaker.say(sentence)
                speaker.idle.wait(60)
                first_token_s.append(first or float("nan"))
                first_audio_s.append(speaker.finished_at[0] - started if speaker.finished_at else float("nan"))
                speaker.close()
            o, c, p = statistics.median(ours_s), statistics.median(cold_s), statistics.median(plain_s)
            speedup = "ready" if o < 0.005 else f"{p / o:.1f}x"
            print(f"{seconds:8.1f}s {o:11.3f} {c:18.3f} {p:17.3f} {speedup:>8}  {statistics.median(first_token_s):19.3f} "
                  f"{statistics.median(first_audio_s):19.3f}  {transcript!r}")
    llm.close()
    print("\n'ready': the transcript was done when the recording stopped (begun at the pause).")
    print("targets: under 0.5 s for a 4 s utterance, and at least 2x faster than the default call")


if __name__ == "__main__":
    main()
