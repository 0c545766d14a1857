"""hearth's Textual terminal UI."""
