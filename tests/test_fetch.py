"""Fetching GGUFs from a hub on 127.0.0.1 serving real GGUF bytes: progress, resume after a
dropped connection, checksum mismatch, disk space, offline; and the models CLI around it."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest

from bench.quants import quantized
from engine import paths
from engine.errors import FetchError
from engine.models.discover import local_models
from engine.models.fetch import download, partial_path, read_remote_header, remote_file
from engine.models.fit import estimate_file, meta_estimator
from engine.models.gguf import parse_header, read_gguf
from tests.hubserver import HubServer
from tui.cli import main

REPO = "bartowski/SmolLM2-135M-Instruct-GGUF"
NAME = "SmolLM2-135M-Instruct-Q4_0.gguf"


@pytest.fixture(scope="module")
def q4_0(gguf_path: Path) -> Path:
    return quantized(gguf_path, "Q4_0")


@pytest.fixture
def hub(q4_0: Path, monkeypatch: pytest.MonkeyPatch):
    with HubServer({f"{REPO}/{NAME}": q4_0}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was bound, then released)."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{closed.getsockname()[1]}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_remote_metadata_gives_size_and_sha256(hub, q4_0) -> None:
    remote = remote_file(REPO, NAME)
    assert remote.size == q4_0.stat().st_size and remote.sha256 == sha256(q4_0)


def test_download_reports_progress_and_verifies(hub, q4_0, tmp_path) -> None:
    reports = []
    dest = download(remote_file(REPO, NAME), tmp_path / NAME, reports.append)
    assert sha256(dest) == sha256(q4_0)
    assert not partial_path(dest).exists()
    assert len(reports) > 10 and reports[-1].done == reports[-1].total == q4_0.stat().st_size
    assert all(r.rate > 0 for r in reports) and reports[0].eta_s is not None
    assert [r.done for r in reports] == sorted(r.done for r in reports)


def test_dropped_connection_resumes_where_it_stopped(hub, q4_0, tmp_path) -> None:
    size = q4_0.stat().st_size
    dest = tmp_path / NAME
    hub.drop_after = 40 * 2**20
    with pytest.raises(FetchError, match="resume"):
        download(remote_file(REPO, NAME), dest)
    kept = partial_path(dest).stat().st_size
    assert 0 < kept < size and not dest.exists()
    assert dest not in local_models(tmp_path)  # a partial file is never taken for a model
    reports = []
    download(remote_file(REPO, NAME), dest, reports.append)
    assert sha256(dest) == sha256(q4_0)
    assert reports[0].resumed_from == kept
    redownloaded = hub.sent - size
    assert hub.gets == 2 and redownloaded <= 2**20, f"{redownloaded} bytes sent twice"


def test_checksum_mismatch_removes_the_file(hub, tmp_path) -> None:
    hub.fake_sha256 = "0" * 64
    with pytest.raises(FetchError, match="does not match the hub's sha256.*removed"):
        download(remote_file(REPO, NAME), tmp_path / NAME)
    assert list(tmp_path.iterdir()) == []


def test_not_enough_disk_space_is_refused_before_downloading(hub, tmp_path) -> None:
    hub.fake_size = 2**60
    with pytest.raises(FetchError, match="not enough disk space"):
        download(remote_file(REPO, NAME), tmp_path / NAME)
    assert hub.gets == 0 and list(tmp_path.iterdir()) == []


def test_unknown_file_and_unreachable_hub(hub, monkeypatch) -> None:
    with pytest.raises(FetchError, match="has no file"):
        remote_file(REPO, "SmolLM2-135M-Instruct-Q9_9.gguf")
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    with pytest.raises(FetchError, match="cannot reach .* hearth models import"):
        remote_file(REPO, NAME)


def test_cli_pull_named_quant_with_progress_then_list(hub, q4_0, capsys) -> None:
    assert main(["models", "pull", "SmolLM2-135M-Instruct:q4_0"]) == 0
    out, err = capsys.readouterr()
    pulled = Path(out.strip())
    assert pulled.parent == paths.models_dir() and sha256(pulled) == sha256(q4_0)
    assert "MiB" in err  # the progress bar: bytes, rate, ETA on stderr
    assert main(["models", "list", "--json", "--ram", "1G"]) == 0
    listing = json.loads(capsys.readouterr().out)
    (row,) = listing["models"]
    assert row["name"] == NAME and row["quantization"] == "Q4_0" and row["fits"] is True


def test_cli_pull_without_quant_takes_the_pick_for_the_budget(hub, capsys) -> None:
    # Only Q4_0 exists on this hub; with hub sizes, Q4_0 (90 MiB) is the largest that fits 300M.
    assert main(["models", "pull", "SmolLM2-135M-Instruct", "--ram", "420M", "--ctx", "2048"]) == 0
    assert Path(capsys.readouterr().out.strip()).name == NAME


def test_cli_pull_offline_says_so_and_offers_import(monkeypatch, capsys) -> None:
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())
    assert main(["models", "pull", "Qwen3-0.6B:Q4_K_M"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "offline" in err and "hearth models import" in err


def test_cli_import_and_rm(q4_0, tmp_path, capsys) -> None:
    usb = tmp_path / "usb" / "my-model.gguf"
    usb.parent.mkdir()
    usb.write_bytes(q4_0.read_bytes())
    assert main(["models", "import", str(usb)]) == 0
    imported = Path(capsys.readouterr().out.strip())
    assert imported == paths.models_dir() / "my-model.gguf" and usb.exists()
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model")
    assert main(["models", "import", str(junk)]) == 1
    assert main(["models", "rm", "my-model"]) == 0
    assert not imported.exists()
    assert main(["models", "rm", "my-model"]) == 1
    assert main(["models", "rm", "../../etc/passwd"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("hearth: ") for line in err)


def test_cli_recommend_json_has_estimate_parts_and_budget(capsys, monkeypatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # offline: catalog sizes
    assert main(["models", "recommend", "Qwen2.5-1.5B-Instruct", "--ram", "2G", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["pick"]["quant"] == "Q6_K" and plan["sizes"].startswith("offline")
    parts = plan["pick"]["estimate"]
    assert {"weights", "kv_cache", "compute", "overhead", "total"} <= set(parts)
    assert plan["budget"]["available"] == 2 * 2**30
    assert main(["models", "recommend", "--ram", "8G"]) == 0
    assert "Qwen3-4B" in capsys.readouterr().out
    assert main(["models", "recommend", "Qwen3-4B", "--ram", "300M"]) == 1
    assert "no quantization" in capsys.readouterr().out


def test_cancel_stops_a_stalled_download_at_once(hub, tmp_path) -> None:
    import threading
    import time

    from engine.errors import FetchCancelled

    hub.hold_after = 4 * 2**20
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(FetchCancelled, match="resumes"):
        download(remote_file(REPO, NAME), tmp_path / NAME, cancel=cancel)
    assert time.monotonic() - started < 3  # not the 30 s read timeout
    assert partial_path(tmp_path / NAME).stat().st_size >= 4 * 2**20 - 2**20


@pytest.fixture
def hub_two(q4_0: Path, gemma_path: Path, monkeypatch: pytest.MonkeyPatch):
    with HubServer({f"{REPO}/{NAME}": q4_0, f"google/gemma-3-270m-GGUF/{gemma_path.name}": gemma_path}) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


@pytest.mark.parametrize("which", ["smollm2", "gemma"])
def test_header_over_http_range_gives_the_same_estimate(hub_two, q4_0, gemma_path, which) -> None:
    """Only the header travels (1.8 MB for SmolLM2 with its BPE merges; Gemma's 262,144-token
    vocabulary makes its header 6.5 MB), and the estimate from it equals the whole file's."""
    repo, name, local = ((REPO, NAME, q4_0) if which == "smollm2"
                         else ("google/gemma-3-270m-GGUF", gemma_path.name, gemma_path))
    header = read_remote_header(remote_file(repo, name))
    size = local.stat().st_size
    with local.open("rb") as handle:
        header_length = parse_header(handle.read(16 * 2**20))[2]
    assert header_length <= header.bytes_read <= 1.3 * header_length + 2**18 and header.bytes_read < size / 10
    for n_ctx in (1024, 8192):
        assert meta_estimator(header.meta)(n_ctx) == estimate_file(local, n_ctx)
    assert header.meta.quantization == read_gguf(local).quantization
    assert hub_two.sent < size / 2  # the connection was closed once the header was in


def test_models_info_and_pull_answer_from_the_header_before_downloading(hub_two, q4_0, capsys) -> None:
    assert main(["models", "info", f"{REPO}/{NAME}", "--ctx", "2048"]) == 0
    out = capsys.readouterr().out
    assert "on the hub" in out and "KB of" in out and "needs" not in out.split("on the hub")[0]
    assert "total" in out and "fits" in out
    # too large for the budget: refused from the header, nothing downloaded
    assert main(["models", "pull", "SmolLM2-135M-Instruct:Q4_0", "--ram", "300M", "--ctx", "8192"]) == 1
    err = capsys.readouterr().err
    assert "from its header on the hub" in err and "not downloaded" in err
    assert not list(paths.models_dir().glob("*.gguf*"))
    # fits: the figures come first, then the download
    assert main(["models", "pull", "SmolLM2-135M-Instruct:Q4_0", "--ctx", "2048"]) == 0
    err = capsys.readouterr().err
    assert f"{NAME}: fits, needs" in err and "from its header" in err
    assert (paths.models_dir() / NAME).stat().st_size == q4_0.stat().st_size
