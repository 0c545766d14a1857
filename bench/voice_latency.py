"""Voice latency, in one run, on real parts: espeak-ng utterances of about 2, 4 and 8 seconds.

Figures:
- stop-to-transcript: hearth's transcription (Silero VAD trim, beam 1, no timestamps, no
  conditioning; ``voice.stt_threads`` = 1 thread) against the plain faster-whisper call with
  default settings (``WhisperModel(dir, compute_type="int8").transcribe(audio)``: beam 5,
  timestamps, CTranslate2's default threads), same audio, same model files, medians of 3;
- end of speech -> first token of the reply (transcribe + the chat model's time to first token);
- end of speech -> first spoken audio (+ the first sentence synthesized by espeak-ng, written to a
  WAV file: playing starts when it is written).

Run: .venv/bin/python -m bench.voice_latency
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

from engine.backend import GenerationParams, TokenEvent
from engine.config import Settings
from engine.llama_backend import LlamaBackend
from engine.session import ChatSession
from engine.starter_model import ensure_starter_model
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


def main() -> None:
    from faster_whisper import WhisperModel

    model_dir = ensure_tiny_en(CACHE / "whisper" / "tiny.en")
    ours = Transcriber(model_dir, threads=1)
    ours.load()
    plain = WhisperModel(str(model_dir), device="cpu", compute_type="int8")
    llm = LlamaBackend(ensure_starter_model(CACHE), n_ctx=2048, seed=1)
    llm.load()
    print(f"faster-whisper tiny.en int8, {model_dir}; chat model SmolLM2-135M Q4_1; TTS espeak-ng\n")
    print(f"{'utterance':>9} {'hearth (s)':>11} {'default call (s)':>17} {'speedup':>8}  "
          f"{'-> first token (s)':>19} {'-> first audio (s)':>19}  transcript")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        for text in UTTERANCES:
            audio = speech(text, tmp_dir)
            seconds = len(audio) / 16000
            ours_s, plain_s, first_token_s, first_audio_s = [], [], [], []
            transcript = ""
            for repeat in range(REPEATS):
                started = time.perf_counter()
                transcript = ours.transcribe(audio).text
                ours_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                segments, _ = plain.transcribe(audio)
                " ".join(s.text for s in segments)
                plain_s.append(time.perf_counter() - started)
                # end of speech -> first token and -> first spoken audio, one pipeline
                out = tmp_dir / f"speak-{seconds:.0f}-{repeat}"
                out.mkdir()
                speaker, splitter = Speaker("espeak-ng", output_dir=out), SentenceSplitter()
                session = ChatSession(llm, None, Settings().chat.system_prompt)
                started = time.perf_counter()
                heard = ours.transcribe(audio).text
                first = None
                for event in session.send(heard, GenerationParams(temperature=0, max_tokens=60), threading.Event()):
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
            o, p = statistics.median(ours_s), statistics.median(plain_s)
            print(f"{seconds:8.1f}s {o:11.3f} {p:17.3f} {p / o:7.1f}x  {statistics.median(first_token_s):19.3f} "
                  f"{statistics.median(first_audio_s):19.3f}  {transcript!r}")
    llm.close()
    print("\ntargets: under 0.5 s for a 4 s utterance, and at least 2x faster than the default call")


if __name__ == "__main__":
    main()
