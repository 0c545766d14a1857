"""hearth's engine: chat backends, sessions, history, config. Never imports Textual."""
