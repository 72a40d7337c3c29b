"""A loopback stand-in for the Hugging Face Hub's file endpoints, for tests without the network.

`huggingface_hub.hf_hub_download` asks `HEAD {HF_ENDPOINT}/{repo}/resolve/{revision}/{file}` for the
commit, ETag and size, then GETs the same URL. This server answers those two requests from a dict
`{repo_id: {revision: {filename: bytes}}}`, and answers unknown repos, revisions and files with the
404s and `X-Error-Code` headers the Hub sends, so the client raises the same exceptions it would.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

Repos = dict[str, dict[str, dict[str, bytes]]]


class HubServer:
    """Serve `repos` on 127.0.0.1 in a background thread; `endpoint` is the value for HF_ENDPOINT."""

    def __init__(self, repos: Repos):
        self.repos = repos
        self.requests: list[str] = []  # "METHOD path" of each request, for assertions
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep the test output clean
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                hub.requests.append(f"{self.command} {self.path}")
                # /{owner}/{name}/resolve/{revision}/{filename}
                parts = unquote(self.path.split("?")[0]).strip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    return self._error(404, "RepoNotFound")
                repo_id, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
                if repo_id not in hub.repos:
                    return self._error(401, "RepoNotFound")  # the Hub answers 401 for unknown or private repos
                if revision not in hub.repos[repo_id]:
                    return self._error(404, "RevisionNotFound")
                files = hub.repos[repo_id][revision]
                if filename not in files:
                    return self._error(404, "EntryNotFound")
                data = files[filename]
                commit = hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()
                self.send_response(200)
                self.send_header("X-Repo-Commit", commit)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _error(self, status: int, code: str) -> None:
                message = f'{{"error": "{code}"}}'.encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(message)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(message)

        return Handler
