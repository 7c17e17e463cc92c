"""`cmosynth lab`: the reviewer's workspace in the browser (screen, settle duplicate pairs,
code CMOCs, resolve conflicts, rerun). It writes only the reviewer-owned files the
pipeline reads (`cmosynth.reviewers`); `workspace` holds the logic, `app` the routes."""

from __future__ import annotations

import getpass
import re
import secrets
import socket
import sys
import threading
import webbrowser
from pathlib import Path

from cmosynth.errors import ConfigError

__all__ = ["serve", "default_reviewer"]


def default_reviewer() -> str:
    """The login name, made fit for a file name."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "reviewer"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name).strip(".-")[:40] or "reviewer"


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def serve(topic: str | Path, outputs: str | Path = "outputs", reviewer: str | None = None,
          host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True,
          out=None) -> None:
    """Start the workspace and block until interrupted."""
    import uvicorn

    from cmosynth.web.app import LOOPBACK, create_app
    from cmosynth.web.workspace import Workspace

    out = out or sys.stdout
    workspace = Workspace(Path(topic), Path(outputs), reviewer or default_reviewer())
    token = None if host in LOOPBACK else secrets.token_urlsafe(24)
    if not _port_free(host, port):
        raise ConfigError("command line", "--port", f"port {port} on {host} is in use; "
                          "choose another with --port N")
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    print(f"cmosynth lab: topic {workspace.topic['name']}, reviewer {workspace.reviewer}, "
          f"outputs {workspace.folder}", file=out)
    print(f"Open {url}  (Ctrl+C stops the workspace; every decision is already saved)",
          file=out, flush=True)
    if token:
        print("Anyone who can reach this host and has the token can change the review's "
              "files; prefer the default 127.0.0.1.", file=out, flush=True)
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    app = create_app(workspace, host=host, port=port, token=token)
    uvicorn.run(app, host=host, port=port, log_level="warning")
