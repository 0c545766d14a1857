"""hearth's voice pipeline (capture, VAD, speech-to-text, speech output). Never imports Textual."""
