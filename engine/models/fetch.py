"""Download a GGUF from the Hugging Face hub: size and sha256 from the hub's file metadata
(``huggingface_hub.get_hf_file_metadata``), disk space checked first, bytes streamed with httpx
into ``NAME.gguf.partial`` (never mistaken for a model: hearth only lists ``*.gguf``), resumed with
an HTTP Range request after an interruption, the sha256 verified before the file is renamed into
place.

``HF_ENDPOINT`` (the variable huggingface_hub honours) points hearth at a mirror or, in tests,
at a server on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.checksums import sha256_digest
from engine.errors import FetchCancelled, FetchError, HubUnreachable
from engine.http_cancel import closed_on_cancel
from engine.models.gguf import GGUFMeta, HeaderCutShort, meta_from_header, parse_header

LOG = logging.getLogger("hearth.fetch")

CHUNK = 1 << 20
"""Bytes per read while downloading (and per progress report)."""
DISK_RESERVE = 64 * 2**20
"""Disk space left free after a download, bytes."""
DEFAULT_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True)
class RemoteFile:
    """A file on the hub: where to GET it, its size in bytes, its sha256 (``None``: unknown)."""

    url: str
    name: str
    size: int | None
    sha256: str | None


@dataclass(frozen=True)
class Progress:
    """Reported after each chunk: bytes done / total (``None``: unknown), bytes per second over
    this attempt, bytes this attempt re-used from an earlier partial file."""

    done: int
    total: int | None
    rate: float
    resumed_from: int

    @property
    def eta_s(self) -> float | None:
        if not self.total or self.rate <= 0:
            return None
        return (self.total - self.done) / self.rate


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def remote_file(repo: str, filename: str, timeout: float = 10.0) -> RemoteFile:
    """Metadata of ``filename`` in the hub repository ``repo`` (a HEAD request).

    Raises:
        HubUnreachable: the hub cannot be reached (offline: import a file instead).
        FetchError: the hub has no such repository or file, or refused the request.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, HFValidationError, RepositoryNotFoundError

    endpoint = hub_endpoint()
    try:
        url = hf_hub_url(repo, filename, endpoint=endpoint)
        meta = get_hf_file_metadata(url, timeout=timeout, endpoint=endpoint)
    except HFValidationError:
        raise FetchError(f"{repo!r} is not a hub repository name (OWNER/REPO)") from None
    except (EntryNotFoundError, RepositoryNotFoundError):
        raise FetchError(f"{repo} on {endpoint} has no file {filename}") from None
    except HfHubHTTPError as exc:
        raise FetchError(f"the hub refused {filename}: {str(exc).splitlines()[0]}") from None
    except _network_errors() as exc:
        raise HubUnreachable(
            f"cannot reach {endpoint} ({type(exc).__name__}); offline? Copy the GGUF here another way "
            "and add it with: hearth models import PATH"
        ) from None
    etag = (meta.etag or "").strip('"').lower()
    sha = etag if len(etag) == 64 and all(c in "0123456789abcdef" for c in etag) else None
    return RemoteFile(url=url, name=filename, size=meta.size, sha256=sha)


def _network_errors() -> tuple[type[BaseException], ...]:
    """Connection errors as huggingface_hub raises them: it uses httpx, or from 2.x its fork
    ``httpx2``, whose exceptions are separate classes."""
    import httpx  # the download stack loads when a download starts, not with every command

    errors: tuple[type[BaseException], ...] = (httpx.HTTPError, OSError)
    try:
        import httpx2  # huggingface_hub 2.x's httpx fork, when it is the one installed
    except ImportError:
        return errors
    return (*errors, httpx2.HTTPError)


def partial_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".partial")


def download(
    remote: RemoteFile,
    dest: Path,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    timeout: float = 30.0,
) -> Path:
    """Fetch ``remote`` to ``dest``, resuming ``dest.partial`` if an earlier attempt stopped.

    Returns ``dest`` once the size and sha256 (when the hub gave one) are verified.

    Raises:
        FetchError: not enough disk space (checked first), the connection failed or dropped
            (the partial file is kept: the next call resumes), the server's bytes do not match
            the sha256 (the file is removed), or the disk filled up.
        FetchCancelled: ``cancel`` was set (the partial file is kept).
    """
    import httpx  # the download stack loads when a download starts, not with every command

    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(dest)
    have = partial.stat().st_size if partial.exists() else 0
    if remote.size is not None and have > remote.size:
        partial.unlink()
        have = 0
    need = (remote.size - have) if remote.size is not None else 0
    free = shutil.disk_usage(dest.parent).free
    if need + DISK_RESERVE > free:
        raise FetchError(
            f"not enough disk space for {remote.name}: it needs {need / 2**20:.0f} MiB more, "
            f"{free / 2**20:.0f} MiB are free in {dest.parent}"
        )
    digest = sha256_digest(partial) if have else hashlib.sha256()
    headers = {"Range": f"bytes={have}-"} if have else {}
    started, resumed_from = time.monotonic(), have
    try:
        with httpx.stream("GET", remote.url, headers=headers, follow_redirects=True,
                          timeout=httpx.Timeout(timeout, connect=10.0)) as response:
            if response.status_code == 416 and have == remote.size:
                pass  # already complete: verify below
            elif response.status_code == 206:
                LOG.info("resuming %s at %d bytes", remote.name, have)
            elif response.status_code == 200:
                if have:
                    LOG.info("%s: the server ignored the range; starting over", remote.name)
                have, resumed_from, digest = 0, 0, hashlib.sha256()
            else:
                raise FetchError(f"downloading {remote.name} failed: HTTP {response.status_code}")
            mode = "ab" if have else "wb"
            stopper = closed_on_cancel(cancel, response) if cancel is not None else contextlib.nullcontext()
            with partial.open(mode) as out, stopper:
                for chunk in response.iter_bytes(CHUNK):
                    if cancel is not None and cancel.is_set():
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    have += len(chunk)
                    if progress is not None:
                        elapsed = max(time.monotonic() - started, 1e-6)
                        progress(Progress(have, remote.size, (have - resumed_from) / elapsed, resumed_from))
    except (httpx.HTTPError, httpx.StreamClosed, OSError) as exc:
        if cancel is not None and cancel.is_set():
            pass  # the watcher shut the connection down: reported below
        elif isinstance(exc, OSError) and not isinstance(exc, httpx.HTTPError):
            raise FetchError(f"cannot write {partial}: {exc.strerror} (disk full?); the partial file is kept") from None
        else:
            raise FetchError(
                f"download of {remote.name} interrupted at {have / 2**20:.1f} of "
                f"{(remote.size or 0) / 2**20:.1f} MiB ({type(exc).__name__}); run the same command "
                "again to resume"
            ) from None
    if cancel is not None and cancel.is_set():
        raise FetchCancelled(f"download of {remote.name} stopped at {have / 2**20:.1f} MiB; "
                             "it resumes from there next time")
    if remote.size is not None and have != remote.size:
        raise FetchError(
            f"download of {remote.name} ended early at {have / 2**20:.1f} of {remote.size / 2**20:.1f} MiB; "
            "run the same command again to resume"
        )
    if remote.sha256 is not None and digest.hexdigest() != remote.sha256:
        partial.unlink()
        raise FetchError(
            f"{remote.name} does not match the hub's sha256 (got {digest.hexdigest()[:12]}…, expected "
            f"{remote.sha256[:12]}…); the file was removed"
        )
    os.replace(partial, dest)
    LOG.info("downloaded %s (%d bytes, %d resumed)", dest, have, resumed_from)
    return dest


HEADER_LIMIT = 64 * 2**20
"""Most bytes read looking for the end of a GGUF header (a 262,144-token vocabulary takes about
4 MiB; the biggest vocabularies in use are under 16 MiB)."""


@dataclass(frozen=True)
class RemoteHeader:
    """A GGUF on the hub, known from its header alone: what it says, and the bytes fetched."""

    meta: GGUFMeta
    bytes_read: int


def read_remote_header(remote: RemoteFile, timeout: float = 30.0) -> RemoteHeader:
    """Read the header of a GGUF on the hub without downloading its weights: one GET with
    ``Range: bytes=0-`` :data:`HEADER_LIMIT` - 1, streamed and parsed as it arrives, closed as
    soon as the header (metadata and tensor table) is complete. A server that ignores the range
    is read no further either.

    Raises:
        HubUnreachable: the hub cannot be reached.
        FetchError: the server refused, or the file is not a GGUF this reader knows.
    """
    import httpx  # the download stack loads when it is used

    data = bytearray()
    attempt_at = 256 * 2**10
    try:
        with httpx.stream("GET", remote.url, headers={"Range": f"bytes=0-{HEADER_LIMIT - 1}"},
                          follow_redirects=True, timeout=httpx.Timeout(timeout, connect=10.0)) as response:
            if response.status_code not in (200, 206):
                raise FetchError(f"reading the header of {remote.name} failed: HTTP {response.status_code}")
            for chunk in response.iter_bytes(64 * 2**10):
                data += chunk
                if len(data) < attempt_at and len(data) < HEADER_LIMIT:
                    continue
                attempt_at = len(data) + max(256 * 2**10, len(data) // 4)
                try:
                    fields, table, length = parse_header(bytes(data))
                except HeaderCutShort:
                    if len(data) >= HEADER_LIMIT:
                        break
                    continue
                return RemoteHeader(meta_from_header(fields, table, Path(remote.name)), len(data))
    except (ValueError, KeyError) as exc:
        raise FetchError(f"{remote.name} on the hub is not a GGUF hearth can read ({exc})") from None
    except _network_errors() as exc:
        raise HubUnreachable(f"cannot reach {hub_endpoint()} ({type(exc).__name__})") from None
    try:  # the stream ended (a short file) or hit the limit: one last try on what came
        fields, table, length = parse_header(bytes(data))
    except ValueError as exc:
        raise FetchError(f"the header of {remote.name} could not be read from its first "
                         f"{len(data)} bytes ({exc})") from None
    return RemoteHeader(meta_from_header(fields, table, Path(remote.name)), len(data))
