"""Config: TOML parsing, validation, nearest-key suggestions, flags over file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from engine.config import Settings, default_toml, load_settings, settings_from_dict, with_overrides
from engine.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_example_config_documents_every_key_with_its_default() -> None:
    assert load_settings(REPO / "config.example.toml") == Settings()
    text = (REPO / "config.example.toml").read_text()
    for section, values in default_toml_sections().items():
        for key in values:
            assert f"\n{key} = " in text, f"{section}.{key} missing from config.example.toml"


def default_toml_sections() -> dict[str, dict]:
    import dataclasses

    return dataclasses.asdict(Settings())


def test_missing_default_file_gives_defaults() -> None:
    assert load_settings() == Settings()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[model]\nn_ctxx = 10\n", "unknown key model.n_ctxx (did you mean 'n_ctx'?)"),
        ("[chat]\ntemprature = 0.5\n", "unknown key chat.temprature (did you mean 'temperature'?)"),
        ("[modle]\npath = 'x'\n", "unknown section [modle] (did you mean 'model'?)"),
        ("[ui]\nzzz = 1\n", "unknown key ui.zzz"),
        ("[model]\nn_ctx = 'big'\n", "model.n_ctx must be int, got 'big'"),
        ("[ui]\ncursor_blink = 1\n", "ui.cursor_blink must be bool, got 1"),
        ("[model]\nn_ctx = true\n", "model.n_ctx must be int, got True"),
        ("[chat]\ntemperature = -1\n", "chat.temperature = -1.0 is outside 0..5"),
        ("[chat]\ntop_p = 2\n", "chat.top_p = 2.0 is outside 0..1"),
        ("model = 3\n", "[model] must be a table"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert expected in info.value.message


@pytest.mark.parametrize(
    ("text", "line"),
    [("[model]\nn_ctx = \n", 2), ("[chat]\ntemperature = 0.5\nsystem_prompt = 'unclosed\n", 3)],
)
def test_syntax_error_names_the_line(tmp_path: Path, text: str, line: int) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert f"line {line}" in info.value.message


def test_hearth_config_env_overrides_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[chat]\ntemperature = 0.1\n")
    monkeypatch.setenv("HEARTH_CONFIG", str(path))
    assert load_settings().chat.temperature == 0.1
    monkeypatch.setenv("HEARTH_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


def test_flags_override_file_and_are_validated() -> None:
    settings = settings_from_dict({"chat": {"temperature": 0.2, "max_tokens": 10}})
    merged = with_overrides(settings, chat__temperature=0.0, model__n_ctx=None)
    assert merged.chat.temperature == 0.0
    assert merged.chat.max_tokens == 10
    assert merged.model.n_ctx == Settings().model.n_ctx
    with pytest.raises(ConfigError, match="command line"):
        with_overrides(settings, chat__top_p=3.0)


def test_default_toml_round_trips(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, default_toml())) == Settings()


def test_config_init_creates_owner_only_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tui.cli import main

    target = tmp_path / "conf" / "config.toml"
    monkeypatch.setenv("HEARTH_CONFIG", str(target))
    assert main(["config", "init"]) == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert load_settings() == Settings()
    assert main(["config", "init"]) == 1  # never overwrites


def test_example_endpoint_table_is_valid_when_uncommented() -> None:
    import re

    from engine.config import EndpointSettings

    text = (REPO / "config.example.toml").read_text()
    block = text[text.index("# [endpoints.lab]"):]
    toml = "\n".join(re.sub(r"^# ", "", line) for line in block.splitlines() if not line.startswith("# #"))
    settings = settings_from_dict(__import__("tomllib").loads(toml))
    lab = settings.endpoints["lab"]
    assert lab.url == "http://192.168.1.20:8080/v1" and lab.api_key_env == "LAB_KEY"
    defaults = EndpointSettings(url=lab.url, api_key_env="LAB_KEY")
    assert lab == defaults  # every other key is shown with its default


def test_presets_inherit_chat_and_are_checked_like_it() -> None:
    from engine.config import ChatSettings, use_preset

    settings = settings_from_dict({"chat": {"temperature": 0.2},
                                   "presets": {"code": {"system_prompt": "You write code.", "max_tokens": 64}}})
    code = settings.presets["code"]
    assert code == ChatSettings(system_prompt="You write code.", temperature=0.2, max_tokens=64)
    assert use_preset(settings, "code").chat == code and use_preset(settings, "code").preset == "code"
    back = use_preset(use_preset(settings, "code"), "")
    assert back.chat == settings.chat and back.preset == ""
    with pytest.raises(ConfigError, match=r"unknown preset 'cdoe' \(did you mean 'code'\?\)"):
        use_preset(settings, "cdoe")
    with pytest.raises(ConfigError, match=r"unknown preset 'x' \(presets: none: add \[presets.NAME\]"):
        use_preset(Settings(), "x")
    with pytest.raises(ConfigError, match=r"unknown key presets.code.temprature \(did you mean 'temperature'\?\)"):
        settings_from_dict({"presets": {"code": {"temprature": 1}}})
    with pytest.raises(ConfigError, match=r"presets.code.top_p = 2.0 is outside 0..1"):
        settings_from_dict({"presets": {"code": {"top_p": 2}}})


def test_example_presets_are_valid_when_uncommented() -> None:
    import re

    text = (REPO / "config.example.toml").read_text()
    block = text[text.index("# [presets.shell]"):text.index("# Named OpenAI-compatible servers")]
    toml = "\n".join(re.sub(r"^# ?", "", line) for line in block.splitlines())
    settings = settings_from_dict(__import__("tomllib").loads(toml))
    assert set(settings.presets) == {"", "shell", "story"}
    assert settings.presets["shell"].temperature == 0.2 and settings.presets["story"].max_tokens == 1024
