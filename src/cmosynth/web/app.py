"""The workspace's routes: each reads a request, calls one `Workspace` method and renders
one template. Starlette, Jinja2 (autoescaped) and one small script; every asset is served
from the package, nothing from the network.

Safety, as datasette does it for a local tool:
- every state-changing request is a POST carrying the page's CSRF token in a header;
- the Host header must name this server (a web page elsewhere cannot reach it through
  DNS rebinding), and a cross-site Origin is refused;
- bound to another host than loopback, the workspace asks for the token printed at start
  (once; a cookie keeps it for the browser session);
- a Content-Security-Policy allows only the package's own script, so text in a record can
  never run as code even if escaping failed somewhere;
- files are served only from the topic's report folder.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import secrets
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (FileResponse, HTMLResponse, JSONResponse, PlainTextResponse,
                                 RedirectResponse, Response)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from cmosynth.errors import CmosynthError
from cmosynth.extract.codebook import ROLES
from cmosynth.web.workspace import Workspace, WorkspaceError

HERE = Path(__file__).parent
TOKEN_COOKIE = "cmosynth_lab"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
#: The report is a page of its own: no script at all, in a sandbox (a unique origin), so
#: even a flaw in its escaping could not act on the workspace.
REPORT_CSP = ("default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; "
              "img-src 'self' data:; sandbox allow-popups allow-popups-to-escape-sandbox "
              "allow-downloads")
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["percent"] = lambda v: "" if v is None else f"{v:.0%}"
    return env


class Guard:
    """Host check, access token and CSRF check around the whole app."""

    def __init__(self, app: ASGIApp, *, hosts: set[str], csrf: str, token: str | None):
        self.app, self.hosts, self.csrf, self.token = app, hosts, csrf, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if _host_name(request.headers.get("host", "")) not in self.hosts:
            await PlainTextResponse("Unknown host: open the workspace at the address "
                                    "`cmosynth lab` printed.", 400)(scope, receive, send)
            return
        if self.token is not None:
            given = request.query_params.get("token")
            if given is not None and hmac.compare_digest(given, self.token):
                response = RedirectResponse(request.url.path, 303)
                response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
                await response(scope, receive, send)
                return
            if not hmac.compare_digest(request.cookies.get(TOKEN_COOKIE, ""), self.token):
                await PlainTextResponse("This workspace needs its token: open the address "
                                        "with ?token=... that `cmosynth lab` printed.",
                                        403)(scope, receive, send)
                return
        if request.method not in ("GET", "HEAD"):
            origin = request.headers.get("origin")
            if origin and _host_name(origin.split("://", 1)[-1]) not in self.hosts:
                await PlainTextResponse("Cross-site request refused.", 403)(scope, receive, send)
                return
            if not hmac.compare_digest(request.headers.get("x-csrf-token", ""), self.csrf):
                await PlainTextResponse("Missing or wrong CSRF token: reload the page.",
                                        403)(scope, receive, send)
                return

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                policy = REPORT_CSP if scope["path"].startswith("/report/") else CSP
                headers.append((b"content-security-policy", policy.encode()))
                headers += [(b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"),
                            (b"x-frame-options", b"DENY")]
            await send(message)

        await self.app(scope, receive, with_headers)


def _host_name(host: str) -> str:
    """The host of a Host header or an origin's authority, without the port."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0]


def create_app(workspace: Workspace, *, host: str = "127.0.0.1", port: int = 8765,
               token: str | None = None, csrf: str | None = None) -> ASGIApp:
    """The workspace as an ASGI app. `token`: required to open it (other hosts)."""
    env = _environment()
    csrf = csrf or secrets.token_urlsafe(32)
    nav = [("overview", "Overview"), ("screen", "Screen"), ("duplicates", "Duplicates"),
           ("code", "Code"), ("conflicts", "Conflicts")]

    def page(name: str, active: str, **context) -> HTMLResponse:
        body = env.get_template(f"{name}.html.j2").render(
            csrf=csrf, nav=nav, active=active, reviewer=workspace.reviewer,
            topic=workspace.topic, roles=ROLES, codebook=workspace.codebook, **context)
        return HTMLResponse(body)

    def fragment(name: str, **context) -> str:
        return env.get_template(f"{name}.html.j2").render(
            csrf=csrf, roles=ROLES, codebook=workspace.codebook, reviewer=workspace.reviewer,
            topic=workspace.topic, **context)

    def no_outputs(active: str) -> HTMLResponse:
        return page("empty", active, folder=workspace.folder)

    async def body(request: Request) -> dict:
        try:
            data = json.loads(await request.body() or b"{}")
        except ValueError:
            raise WorkspaceError("the request is not JSON") from None
        if not isinstance(data, dict):
            raise WorkspaceError("the request is not a JSON object")
        return data

    def text(data: dict, key: str, required: bool = True) -> str:
        value = data.get(key, "")
        if not isinstance(value, str) or (required and not value):
            raise WorkspaceError(f"{key} is missing")
        return value

    def number(data: dict, key: str) -> int:
        value = data.get(key)
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise WorkspaceError(f"{key} must be a number")
        return value

    def words(data: dict, key: str) -> list[str]:
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise WorkspaceError(f"{key} must be a list of words")
        return value

    # --- overview ---------------------------------------------------------------------
    async def overview(request: Request):
        return page("overview", "overview", view=workspace.overview())

    async def run(request: Request):
        job = workspace.start_run("rerun")
        return JSONResponse({"running": job.running})

    async def run_status(request: Request):
        job = workspace.job
        if job is None:
            return JSONResponse({"running": False, "returncode": None, "tail": []})
        return JSONResponse({"running": job.running, "returncode": job.returncode,
                             "label": job.label, "tail": job.tail()})

    async def report_file(request: Request):
        folder = (workspace.folder / "report").resolve()
        target = (folder / request.path_params["path"]).resolve()
        if not target.is_relative_to(folder) or not target.is_file():
            return PlainTextResponse("Not found", 404)
        return FileResponse(target)

    # --- screen -----------------------------------------------------------------------
    def screen_parts(show: str | None = None) -> dict:
        """The card of the next record (of `show`, the record an undo gave back) and the
        progress panel."""
        queue = workspace.queue()
        record = workspace.record(show) if show else queue.next_record()
        return {"card": fragment("_card", card=workspace.screening_card(record) if record
                                 else None, reasons=workspace.exclusion_reasons()),
                "progress": fragment("_progress", progress=queue.progress(),
                                     file=workspace.my_file("decisions")),
                "record_id": record["record_id"] if record else None}

    async def screen(request: Request):
        if not workspace.has_records():
            return no_outputs("screen")
        return page("screen", "screen", parts=screen_parts(),
                    reasons=workspace.exclusion_reasons())

    async def screen_decide(request: Request):
        data = await body(request)
        workspace.decide(text(data, "record_id"), text(data, "decision"),
                         text(data, "reason", required=False))
        return JSONResponse(screen_parts())

    async def screen_undo(request: Request):
        undone = workspace.undo()
        return JSONResponse({**screen_parts(undone), "undone": undone})

    # --- duplicates ---------------------------------------------------------------------
    async def duplicates(request: Request):
        if not workspace.has_records():
            return no_outputs("duplicates")
        return page("duplicates", "duplicates", pairs=workspace.pairs(),
                    file=workspace.my_file("overrides"))

    async def duplicates_decide(request: Request):
        data = await body(request)
        same = data.get("same")
        if not isinstance(same, bool):
            raise WorkspaceError("same must be true or false")
        workspace.decide_pair(text(data, "a"), text(data, "b"), same,
                              text(data, "reason", required=False))
        return JSONResponse({"ok": True})

    # --- code ---------------------------------------------------------------------------
    async def code(request: Request):
        if not workspace.has_records():
            return no_outputs("code")
        order = request.query_params.get("order", "uncertain")
        order = order if order in ("uncertain", "sample") else "uncertain"
        ids = workspace.coding_order(order)
        if not ids:
            return page("code", "code", view=None, ids=[], order=order, position=0,
                        job=workspace.job)
        record_id = request.query_params.get("record") or ids[0]
        if record_id not in ids:
            return PlainTextResponse("That record is not among the included records.", 404)
        position = ids.index(record_id)
        return page("code", "code", view=workspace.code_view(record_id), ids=ids, order=order,
                    position=position, job=workspace.job,
                    previous=ids[position - 1] if position > 0 else None,
                    following=ids[position + 1] if position + 1 < len(ids) else None,
                    file=workspace.my_file("coding"),
                    configurations_file=workspace.my_file("configurations"))

    async def code_sentence(request: Request):
        data = await body(request)
        concepts = data.get("concepts")
        workspace.code_sentence(text(data, "record_id"), number(data, "sentence"),
                                words(data, "roles"),
                                None if concepts is None else words(data, "concepts"))
        return JSONResponse({"ok": True})

    async def code_accept(request: Request):
        data = await body(request)
        return JSONResponse({"coded": workspace.accept_record(text(data, "record_id"))})

    async def code_link(request: Request):
        data = await body(request)
        sentences = data.get("sentences") or {}
        concepts = data.get("concepts") or {}
        if not isinstance(sentences, dict) or not isinstance(concepts, dict):
            raise WorkspaceError("sentences and concepts are objects by role")
        label = workspace.link_cmoc(
            text(data, "record_id"),
            {role: (int(v) if str(v).isdigit() else None) for role, v in sentences.items()},
            {role: words(concepts, role) for role in concepts},
            text(data, "theory_id", required=False), text(data, "summary", required=False))
        return JSONResponse({"label": label})

    async def code_unlink(request: Request):
        data = await body(request)
        workspace.unlink_cmoc(text(data, "record_id"), text(data, "label"))
        return JSONResponse({"ok": True})

    async def code_retrain(request: Request):
        job = workspace.start_run("retrain the coder")
        return JSONResponse({"running": job.running})

    # --- conflicts ----------------------------------------------------------------------
    async def conflicts(request: Request):
        if not workspace.has_records():
            return no_outputs("conflicts")
        return page("conflicts", "conflicts", screening=workspace.screening_conflicts(),
                    coding=workspace.coding_conflicts(),
                    file=workspace.consensus_file("decisions"),
                    coding_file=workspace.consensus_file("coding"))

    async def settle_screening(request: Request):
        data = await body(request)
        workspace.settle_screening(text(data, "record_id"), text(data, "decision"),
                                   text(data, "reason", required=False))
        return JSONResponse({"ok": True})

    async def settle_coding(request: Request):
        data = await body(request)
        workspace.settle_coding(text(data, "record_id"), number(data, "sentence"),
                                words(data, "roles"))
        return JSONResponse({"ok": True})

    async def home(request: Request):
        return RedirectResponse("/overview", 303)

    async def refused(request: Request, error: Exception) -> Response:
        return JSONResponse({"error": str(error)}, 400)

    routes = [
        Route("/", home), Route("/overview", overview),
        Route("/run", run, methods=["POST"]), Route("/run/status", run_status),
        Route("/report/{path:path}", report_file),
        Route("/screen", screen), Route("/screen/decide", screen_decide, methods=["POST"]),
        Route("/screen/undo", screen_undo, methods=["POST"]),
        Route("/duplicates", duplicates),
        Route("/duplicates/decide", duplicates_decide, methods=["POST"]),
        Route("/code", code), Route("/code/sentence", code_sentence, methods=["POST"]),
        Route("/code/accept", code_accept, methods=["POST"]),
        Route("/code/link", code_link, methods=["POST"]),
        Route("/code/unlink", code_unlink, methods=["POST"]),
        Route("/code/retrain", code_retrain, methods=["POST"]),
        Route("/conflicts", conflicts),
        Route("/conflicts/screening", settle_screening, methods=["POST"]),
        Route("/conflicts/coding", settle_coding, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    hosts = LOOPBACK | {host}
    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        workspace.close()

    app = Starlette(routes=routes, exception_handlers={CmosynthError: refused},
                    lifespan=lifespan,
                    middleware=[Middleware(Guard, hosts=hosts, csrf=csrf, token=token)])
    return app
