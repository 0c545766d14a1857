"""Push-to-talk in the app, end to end on real parts: PortAudio records espeak-ng speech from a
file-backed ALSA device, faster-whisper tiny.en transcribes it, the transcript lands in the prompt
and is sent, and the real chat model's reply streams in."""

from __future__ import annotations

import pytest

from tests.apphelpers import make_app, make_settings, wait_until
from tests.test_voice import same_question
from tui.widgets.conversation import ReplyView, UserMessage
from tui.widgets.prompt_input import PromptInput
from tui.widgets.recording_bar import RecordingBar

pytestmark = [pytest.mark.voice, pytest.mark.model]

SIZE = (100, 30)


def voice_app(gguf_path, speech_model, **voice):
    settings = make_settings(voice={"stt_model": str(speech_model), **voice})
    return make_app(gguf_path, settings)


async def test_push_to_talk_question_is_transcribed_sent_and_answered(audio, speech_model, gguf_path) -> None:
    app = voice_app(gguf_path, speech_model, input_device="filemic", auto_send=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await wait_until(pilot, lambda: app.session.backend.loaded)
        bar = screen.query_one(RecordingBar)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: screen.query(UserMessage), timeout=120)
        assert same_question(screen.query_one(UserMessage).text)
        assert not bar.has_class("-active")
        await wait_until(pilot, lambda: screen.query(ReplyView) and not screen.streaming, timeout=120)
        assert "Paris" in screen.query_one(ReplyView).text


async def test_transcript_waits_in_the_prompt_without_auto_send(audio, speech_model, gguf_path) -> None:
    app = voice_app(gguf_path, speech_model, input_device="filemic", push_to_talk_key="f5")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        prompt = screen.query_one(PromptInput)
        await pilot.press("f5")
        await wait_until(pilot, lambda: prompt.text, timeout=120)
        assert same_question(prompt.text)
        assert not screen.query(UserMessage)  # the user can fix a misheard word before sending


async def test_silence_says_it_did_not_catch_that(audio, speech_model, gguf_path) -> None:
    app = voice_app(gguf_path, speech_model, input_device="silentmic", max_seconds=5)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: any("Didn't catch that" in n.message for n in app._notifications),
                         timeout=120)
        assert app.screen.query_one(PromptInput).text == ""
        assert not app.screen.query_one(RecordingBar).has_class("-active")


async def test_escape_cancels_a_recording(audio, speech_model, gguf_path) -> None:
    app = voice_app(gguf_path, speech_model, input_device="clockedmic", max_seconds=600)
    async with app.run_test(size=SIZE) as pilot:
        bar = app.screen.query_one(RecordingBar)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: "REC" in str(bar.render()))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not bar.has_class("-active"), timeout=30)
        assert not any("Didn't catch" in n.message for n in app._notifications)
        assert app.screen.query_one(PromptInput).text == ""


async def test_missing_microphone_is_one_notification_and_chat_goes_on(audio, speech_model, gguf_path) -> None:
    app = voice_app(gguf_path, speech_model, input_device="usb-mic")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: app._notifications)
        (note,) = list(app._notifications)
        assert note.title == "Voice" and "no input device 'usb-mic'" in note.message
        prompt = app.screen.query_one(PromptInput)
        prompt.load_text("What is the capital of France? Answer in one word.")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen.query(ReplyView) and not app.screen.streaming, timeout=120)
        assert "Paris" in app.screen.query_one(ReplyView).text
