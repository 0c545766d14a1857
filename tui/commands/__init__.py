"""hearth's command-line commands that are not Textual: ask, models, voice, config."""
