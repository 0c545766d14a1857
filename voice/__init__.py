"""Push-to-talk speech in and spoken answers out: capture (sounddevice/PortAudio), voice-activity
detection and speech-to-text (faster-whisper), sentence-by-sentence speech output (espeak-ng or
Piper). No Textual here; sounddevice, PortAudio and CTranslate2 load only when voice is used."""
