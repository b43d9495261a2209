"""`llasa review OUTDIR --serve`: the review page on this machine only, with accept and redo.

The standard library's `ThreadingHTTPServer` is enough for one listener and keeps a web framework
out of the dependencies. It binds to 127.0.0.1 on a free port, and every request must carry the
random token the printed address holds as its first path part (403 without), so other local
users and other sites' pages cannot reach the job; the Host header must name this address (a
DNS-rebinding page cannot pose as it). It serves the page, audio files under the output folder
and the job folder (paths resolved, symlinks followed, and refused when they leave those folders),
and two actions that write only to the job store. Audio is served with byte ranges, which a
browser needs to seek to a segment.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import InvalidOptionError, LlasaError
from .review_actions import accept_segment, queue_redo
from .review_page import (
    REVIEW_PAGE,
    SERVED_PREFIX,
    ReviewJob,
    book_info,
    render_page,
    review_data,
    segment_entries,
)

LOOPBACK = "127.0.0.1"
TOKEN_BYTES = 32
MAX_BODY_BYTES = 64 * 1024  # an action's JSON: a segment id and at most an edited sentence
COPY_CHUNK_BYTES = 256 * 1024
AUDIO_TYPES = {
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
    ".opus": "audio/ogg",
    ".ogg": "audio/ogg",
    ".m4a": "audio/mp4",
    ".m4b": "audio/mp4",
}
HOSTS = (LOOPBACK, "localhost")


class ReviewServer(ThreadingHTTPServer):
    """The review page of one job, on 127.0.0.1 at a free port, behind a random token."""

    daemon_threads = True  # a browser holding a connection open must not keep Ctrl-C from ending the server

    def __init__(self, job: ReviewJob, who: str) -> None:
        self.job = job
        self.who = who
        self.token = secrets.token_urlsafe(TOKEN_BYTES)
        self.book = book_info(job)  # before binding: a job that cannot be read leaves no socket open
        super().__init__((LOOPBACK, 0), ReviewHandler)  # port 0: the system picks a free one

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/{self.token}/{REVIEW_PAGE}"

    def link(self, path: Path) -> str | None:
        return self.job.served_link(path)


def serve_review(job: ReviewJob, who: str, announce: Callable[[str], None], open_browser: bool) -> None:
    """Serve until Ctrl-C: `announce` hears the address (token included) once the port is bound."""
    with ReviewServer(job, who) as server:
        announce(server.url)
        if open_browser:
            import webbrowser

            webbrowser.open(server.url)
        with contextlib.suppress(KeyboardInterrupt), _stopped_by_signals():
            server.serve_forever()


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM stop the server. Handlers are installed on purpose: a process started
    with SIGINT ignored (a non-interactive shell's `&`, a test runner's worker process) would
    otherwise never stop on Ctrl-C, since Python then leaves SIGINT ignored."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class ReviewHandler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "llasa-review"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class names it so
        pass  # the terminal shows the address and errors, not every audio range request

    # --- routing ---

    def do_GET(self) -> None:  # noqa: N802 - the base class's naming
        self._get(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._get(send_body=False)

    def do_POST(self) -> None:  # noqa: N802
        route = self._route()
        if route is None:
            return
        actions = {"api/accept": self._accept, "api/redo": self._redo}
        if route not in actions:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no action {route!r}"})
            return
        try:
            body = self._body()
            segment_id = str(body.get("id", ""))
            actions[route](segment_id, body)
            (entry,) = segment_entries(self.server.job, [segment_id], self.server.link)
        except LlasaError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        self._json(HTTPStatus.OK, {"segment": entry})

    def _get(self, send_body: bool) -> None:
        route = self._route()
        if route is None:
            return
        try:
            if route in ("", REVIEW_PAGE):
                page = render_page(review_data(self.server.job, self.server.link, self.server.book), served=True)
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", page.encode("utf-8"), send_body)
            elif route == "api/segments":
                ids = ",".join(parse_qs(urlsplit(self.path).query).get("ids", [""])).split(",")
                entries = segment_entries(self.server.job, [i for i in ids if i], self.server.link)
                self._json(HTTPStatus.OK, {"segments": entries}, send_body)
            else:
                self._file(route, send_body)
        except LlasaError as exc:
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(exc)}, send_body)

    def _route(self) -> str | None:
        """The path after the token, or None once a 403 is sent (no token, a wrong one, or a Host
        header that does not name this server)."""
        host = self.headers.get("Host", "")
        parts = urlsplit(self.path).path.split("/", 2)
        token = parts[1] if len(parts) > 1 else ""
        if host not in {f"{name}:{self.server.port}" for name in HOSTS} or not secrets.compare_digest(
            token.encode(), self.server.token.encode()
        ):
            self._json(HTTPStatus.FORBIDDEN, {"error": "forbidden: use the address llasa review printed"})
            return None
        return unquote(parts[2]) if len(parts) > 2 else ""

    # --- actions ---

    def _body(self) -> dict[str, Any]:
        if self.headers.get_content_type() != "application/json":
            raise InvalidOptionError("an action is a JSON body (Content-Type: application/json)")
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY_BYTES:
            raise InvalidOptionError(f"an action's body is 1 to {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(self.rfile.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidOptionError("an action's body must be JSON") from exc
        if not isinstance(body, dict):
            raise InvalidOptionError("an action's body must be a JSON object")
        return body

    def _accept(self, segment_id: str, body: dict[str, Any]) -> None:
        accept_segment(self.server.job.folder, segment_id, self.server.who)

    def _redo(self, segment_id: str, body: dict[str, Any]) -> None:
        text = body.get("text")
        if text is not None and not isinstance(text, str):
            raise InvalidOptionError("text must be a string")
        queue_redo(self.server.job.folder, segment_id, self.server.who, text)

    # --- files ---

    def _file(self, route: str, send_body: bool) -> None:
        path = served_file(self.server.job, route)
        if path is None:
            self._json(HTTPStatus.FORBIDDEN, {"error": "refused: not an audio file of this job"}, send_body)
            return
        size = path.stat().st_size
        first, last = 0, size - 1
        status = HTTPStatus.OK
        if "Range" in self.headers:
            wanted = _byte_range(self.headers["Range"], size)
            if wanted is None:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            (first, last), status = wanted, HTTPStatus.PARTIAL_CONTENT
        self.send_response(status)
        self.send_header("Content-Type", AUDIO_TYPES[path.suffix.lower()])
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(last - first + 1))
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.send_header("Cache-Control", "no-store")  # a redo rewrites a chapter under the same name
        self.end_headers()
        if send_body:  # a browser that stops reading (a seek, a closed tab) is not an error
            with path.open("rb") as handle, contextlib.suppress(ConnectionError):
                handle.seek(first)
                _copy(handle, self.wfile, last - first + 1)

    # --- replies ---

    def _json(self, status: HTTPStatus, data: dict[str, Any], send_body: bool = True) -> None:
        self._send(status, "application/json", json.dumps(data, ensure_ascii=False).encode("utf-8"), send_body)

    def _send(self, status: HTTPStatus, content_type: str, body: bytes, send_body: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if send_body:
            with contextlib.suppress(ConnectionError):
                self.wfile.write(body)


def served_file(job: ReviewJob, route: str) -> Path | None:
    """The audio file a request names, under the output folder (or, after `_job/`, the job
    folder); None for anything else: a `..`, an absolute path, a symlink out, or not audio."""
    root, relative = (
        (job.folder, route[len(SERVED_PREFIX) :]) if route.startswith(SERVED_PREFIX) else (job.outdir, route)
    )
    parts = relative.split("/")
    if not relative or "\\" in relative or "\x00" in relative or any(p in ("", ".", "..") for p in parts):
        return None
    try:
        path = (root / relative).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    inside = path.is_relative_to(root.resolve())
    return path if inside and path.is_file() and path.suffix.lower() in AUDIO_TYPES else None


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The one range of `bytes=first-last`, `bytes=first-` or `bytes=-suffix` within `size`."""
    unit, _, spec = header.partition("=")
    first_text, dash, last_text = spec.strip().partition("-")
    if unit.strip() != "bytes" or not dash or "," in spec:
        return None
    try:
        if first_text:
            first = int(first_text)
            last = min(int(last_text), size - 1) if last_text else size - 1
        else:
            first, last = max(0, size - int(last_text)), size - 1
    except ValueError:
        return None
    return (first, last) if 0 <= first <= last < size else None


def _copy(source: Any, target: Any, count: int) -> None:
    while count > 0:
        chunk = source.read(min(COPY_CHUNK_BYTES, count))
        if not chunk:
            return
        target.write(chunk)
        count -= len(chunk)
