"""The app's HTTP API and page (FastAPI). Every error is a JSON ``{"error": message}`` with a 4xx status
that the page shows; an unexpected one is a 500 without details (the traceback goes to the log). Every
request first passes :class:`tamvt.app.security.Guard` (Host, token, Origin).

    GET  /                                   the page          GET /static/...   its scripts (modules) and style
    GET  /api/sources                        what can be opened (demo, files under --root)
    POST /api/sessions                       {"source": "demo"} | {"source": "path", "path": "rel/clip.mp4"}
    POST /api/sessions/upload?name=clip.mp4  the video file as the request body
    GET  /api/recent                         the sessions saved on this server, most recently changed first
    GET  /api/sessions/{sid}                 the session (video, objects, annotated frames, job); reopened from
                                             disk when it was put there (its "notice" says why it was closed)
    POST /api/sessions/{sid}/alive           a page's keep-alive: {"open": true | false (on disk), "notice": ...}
    DELETE /api/sessions/{sid}               the page left it: put to disk, its memory freed (unless propagating)
    GET  /api/sessions/{sid}/frames/{k}      frame k as JPEG
    GET  /api/sessions/{sid}/masks/{k}       frame k's index mask, H*W bytes (X-Mask-Source: annotation|result|none)
    PUT  /api/sessions/{sid}/masks/{k}       paint: H*W bytes, one id per pixel
    DELETE /api/sessions/{sid}/masks/{k}     remove frame k's painted mask (and its place in the memory)
    POST /api/sessions/{sid}/masks/{k}/png   import an index PNG
    POST /api/sessions/{sid}/prompt          {"frame": k, "object": id, "box": [x0, y0, x1, y1]} or
                                             {"frame": k, "object": id, "positive": [[x, y], ...], "negative": [...],
                                             "new": bool}: the proposed mask, H*W bytes 0 / 1 (nothing is kept
                                             until the page sends it as the frame's painted mask)
    POST /api/sessions/{sid}/propagate       {"frame": k, "direction": "forward" | "backward" | "both"}
    GET  /api/sessions/{sid}/events?job=N    progress as server-sent events
    POST /api/sessions/{sid}/cancel
    POST /api/sessions/{sid}/export          {"kind": "masks" | "objects" | "overlay"} -> {"url": ...}
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import json
import logging
import math
import os
import re
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import Scope

from tamvt.app.context import AppContext
from tamvt.app.engine import Engine
from tamvt.app.errors import AppError
from tamvt.app.export import KINDS, free_name, write_export
from tamvt.app.media import check_mask, read_mask_png, sniff_video
from tamvt.app.prompting import MAX_CLICKS
from tamvt.app.security import Guard, require_json
from tamvt.app.sessions import AppSession
from tamvt.app.settings import MB, AppSettings
from tamvt.errors import TamvtError
from tamvt.prompts import PromptModel

log = logging.getLogger("tamvt.app")
router = APIRouter()
SID = r"^[0-9a-f]{16}$"
MAX_MASK_PNG = 32 * MB


def create_app(settings: AppSettings, engine: Engine | None = None, prompt_model: PromptModel | None = None) -> FastAPI:
    """The app for ``settings``; ``engine``: share an already loaded model (else one is made, loaded on first use);
    ``prompt_model``: the Box / Click tools' model, built (else ``settings.prompt_model``, built on first use)."""
    ctx = AppContext(settings, engine, prompt_model)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        async def evict() -> None:
            while True:
                await asyncio.sleep(min(60.0, max(1.0, settings.idle_seconds / 4)))
                await run_in_threadpool(ctx.sessions.evict_idle)
                await run_in_threadpool(ctx.prune)

        await run_in_threadpool(ctx.prune)

        task = asyncio.create_task(evict())
        try:
            yield
        finally:
            task.cancel()
            await run_in_threadpool(ctx.sessions.close_all)

    app = FastAPI(title="tamvt", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ctx = ctx
    app.include_router(router)
    app.add_middleware(Guard, token=settings.token, hosts=settings.allowed_hosts)
    app.mount("/static", _Static(directory=str(resources.files("tamvt.app") / "static")), name="static")
    # starlette types every handler as taking a plain Exception; each of these gets its own class
    app.add_exception_handler(TamvtError, _tamvt_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal_error)
    return app


class _Static(StaticFiles):
    """The page's script modules and style. A browser runs a module script only when it comes as JavaScript,
    and the type guessed from the system's MIME table may not be (Windows' registry can say text/plain)."""

    def file_response(
        self, full_path: str | os.PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        if isinstance(response, FileResponse) and str(full_path).endswith(".js"):
            response.headers["content-type"] = "text/javascript; charset=utf-8"
        return response


# ---- errors -----------------------------------------------------------------------------------------


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _tamvt_error(request: Request, err: TamvtError) -> JSONResponse:
    return _error(err.status if isinstance(err, AppError) else 400, str(err))


async def _validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
    parts = [f"{'.'.join(str(x) for x in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', '')}" for e in err.errors()]
    return _error(400, "bad request: " + "; ".join(parts))


async def _http_error(request: Request, err: HTTPException) -> JSONResponse:
    return _error(err.status_code, str(err.detail))


async def _internal_error(request: Request, err: Exception) -> JSONResponse:
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=err)
    return _error(500, "internal error: see the server log")


# ---- helpers ----------------------------------------------------------------------------------------


def _ctx(request: Request) -> AppContext:
    return request.app.state.ctx


def _session(request: Request, sid: str) -> AppSession:
    """The session ``sid``, reopened from disk if it was put there (a blocking call: it may decode a video)."""
    if not re.match(SID, sid):
        raise AppError(404, "bad session id")
    return _ctx(request).sessions.get(sid)


async def _session_async(request: Request, sid: str) -> AppSession:
    return await run_in_threadpool(_session, request, sid)


def _too_large(limit: int) -> AppError:
    return AppError(
        413,
        f"the upload is larger than the server's limit of {limit / MB:.0f} MiB "
        "(start the app with a larger --max-upload-mb)",
    )


def _declared_length(request: Request, limit: int) -> None:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(limit)


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused with a 413 as soon as it passes ``limit`` bytes."""
    _declared_length(request, limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _json(request: Request) -> dict:
    require_json(request)
    try:
        data = json.loads(await _body(request, 64 * 1024) or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise AppError(400, "the request body is not JSON") from None
    if not isinstance(data, dict):
        raise AppError(400, "the request body must be a JSON object")
    return data


def _int(data: dict, key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise AppError(400, f"{key!r} must be an integer, got {value!r}")
    return value


# ---- the page and the sources -------------------------------------------------------------------------


@router.get("/", include_in_schema=False)
def index() -> Response:
    html = (resources.files("tamvt.app") / "static" / "index.html").read_text(encoding="utf-8")
    return Response(html, media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/api/sources")
def sources(request: Request) -> dict:
    s = _ctx(request).settings
    return {
        "sources": _ctx(request).list_sources(),
        "root": s.root is not None,
        "demo": s.demo,
        "max_upload_mb": s.max_upload_bytes / MB,
        "max_objects": s.max_objects,
        "prompt_model": _ctx(request).prompter.name,
    }


# ---- sessions ------------------------------------------------------------------------------------------


@router.post("/api/sessions")
async def open_session(request: Request) -> dict:
    data, ctx = await _json(request), _ctx(request)
    source = data.get("source")
    if source == "demo":
        session = await run_in_threadpool(ctx.open_demo)
    elif source == "path":
        path = data.get("path")
        if not isinstance(path, str) or not path:
            raise AppError(400, "'path' must be a path relative to the --root folder")
        session = await run_in_threadpool(ctx.open_path, path)
    else:
        raise AppError(400, f"'source' must be 'demo' or 'path', got {source!r} (uploads go to /api/sessions/upload)")
    return session.info()


@router.post("/api/sessions/upload")
async def upload(request: Request, name: str) -> dict:
    """The video file is the request body; it is checked by its content, whatever its name says."""
    from tamvt.app.media import check_name

    ctx = _ctx(request)
    check_name(name, "file name")
    limit = ctx.settings.max_upload_bytes
    _declared_length(request, limit)
    folder = ctx.settings.workdir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    digest, size, head = hashlib.sha256(), 0, b""
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".upload-", delete=False) as f:
        path = Path(f.name)
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                if len(head) < 16:
                    head = (head + chunk)[:16]
                    if len(head) >= 12 and sniff_video(head) is None:
                        raise AppError(
                            415,
                            f"{name!r} is not a video file: its content is not MP4 / MOV, "
                            "WebM / MKV or AVI (the file's name does not matter)",
                        )
                digest.update(chunk)
                f.write(chunk)
            if size == 0:
                raise AppError(400, "the upload is empty")
            if sniff_video(head) is None:
                raise AppError(415, f"{name!r} is not a video file (too short to be one)")
        except BaseException:
            f.close()
            path.unlink(missing_ok=True)
            raise
    session = await run_in_threadpool(ctx.open_upload, path, name, digest.hexdigest())
    return session.info()


@router.get("/api/recent")
def recent(request: Request) -> dict:
    return {"sessions": _ctx(request).recent()}


@router.get("/api/sessions/{sid}")
def session_info(request: Request, sid: str) -> dict:
    return _session(request, sid).info()


@router.post("/api/sessions/{sid}/alive")
def alive(request: Request, sid: str) -> dict:
    ctx = _ctx(request)
    if not re.match(SID, sid):
        raise AppError(404, "bad session id")
    if sid not in ctx.sessions and not ctx.disk.exists(sid):
        raise AppError(404, f"no session {sid} on this server any more: open the video again")
    is_open, notice = ctx.sessions.alive(sid)
    return {"open": is_open, "notice": notice}


@router.delete("/api/sessions/{sid}")
def close_session(request: Request, sid: str) -> dict:
    if not re.match(SID, sid):
        raise AppError(404, "bad session id")
    sessions = _ctx(request).sessions
    if sid in sessions and sessions.get(sid).running:
        return {"closed": False}  # its propagation finishes first; then it goes to disk when idle
    sessions.close(sid)
    return {"closed": True}


# ---- frames and masks -----------------------------------------------------------------------------------


@router.get("/api/sessions/{sid}/frames/{k}")
def frame(request: Request, sid: str, k: int) -> Response:
    data = _session(request, sid).video.jpeg(k)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/api/sessions/{sid}/masks/{k}")
def get_mask(request: Request, sid: str, k: int) -> Response:
    session = _session(request, sid)
    mask, where = session.mask(k)
    body = b"" if mask is None else gzip.compress(mask.tobytes(), compresslevel=1)
    headers = {"X-Mask-Source": where, "Cache-Control": "no-store"}
    if mask is not None:
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/octet-stream", headers=headers)


@router.put("/api/sessions/{sid}/masks/{k}")
async def put_mask(request: Request, sid: str, k: int) -> dict:
    """Body: ``H * W`` bytes, row by row, one object id (0..max_objects) per pixel."""
    session = await _session_async(request, sid)
    session.check_frame(k)
    h, w = session.video.size
    data = await _body(request, h * w + 1)
    if len(data) != h * w:
        raise AppError(
            400, f"the mask has {len(data)} bytes; frame {k} needs {w}x{h} = {h * w} (one object id per pixel)"
        )
    mask = check_mask(np.frombuffer(data, dtype=np.uint8).reshape(h, w), (h, w), session.max_objects)
    session.set_annotation(k, mask)
    return {"frame": k, "objects": session.object_ids()}


@router.delete("/api/sessions/{sid}/masks/{k}")
def delete_mask(request: Request, sid: str, k: int) -> dict:
    session = _session(request, sid)
    session.remove_annotation(k)
    return session.info()


@router.post("/api/sessions/{sid}/masks/{k}/png")
async def import_png(request: Request, sid: str, k: int) -> dict:
    session = await _session_async(request, sid)
    session.check_frame(k)
    data = await _body(request, min(MAX_MASK_PNG, _ctx(request).settings.max_upload_bytes))
    mask = await run_in_threadpool(read_mask_png, data, session.video.size, session.max_objects)
    session.set_annotation(k, mask)
    return {"frame": k, "objects": session.object_ids()}


def _numbers(value, n: int) -> bool:
    """``value`` is a list of ``n`` finite numbers (JSON may carry NaN and Infinity)."""
    return (
        isinstance(value, list)
        and len(value) == n
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    )


def _points(data: dict, key: str) -> list[tuple[float, float]]:
    value = data.get(key, [])
    ok = isinstance(value, list) and len(value) <= MAX_CLICKS and all(_numbers(p, 2) for p in value)
    if not ok:
        raise AppError(400, f"{key!r} must be a list of at most {MAX_CLICKS} [x, y] pixel positions, got {value!r:.80}")
    return [(float(x), float(y)) for x, y in value]


@router.post("/api/sessions/{sid}/prompt")
async def prompt(request: Request, sid: str) -> Response:
    """A proposal for one object on one frame from a box, or from clicks (all the clicks made on this proposal so
    far; ``new``: the first of them, else the last proposal of this object and frame is refined, or without one,
    the object's mask on that frame). The body is the mask, ``H * W`` bytes 0 / 1, gzip-encoded as the masks'."""
    session, data = await _session_async(request, sid), await _json(request)
    k, obj = session.check_frame(_int(data, "frame")), _int(data, "object")
    if not 1 <= obj <= session.max_objects:
        raise AppError(400, f"'object' must be an object id 1..{session.max_objects}, got {obj}")
    prompter = _ctx(request).prompter
    frame = session.video.frames[k]
    if "box" in data:
        box = data["box"]
        if not _numbers(box, 4):
            raise AppError(400, f"'box' must be [x0, y0, x1, y1] in pixels, got {box!r:.80}")
        proposal = await run_in_threadpool(prompter.box, frame, k, obj, tuple(box))
    else:
        positive, negative = _points(data, "positive"), _points(data, "negative")
        if not positive and not negative:
            raise AppError(400, "a prompt needs a 'box' or clicks ('positive' / 'negative')")
        last = session.proposal
        previous: np.ndarray | None = None
        if not data.get("new") and last is not None and (last.frame, last.obj) == (k, obj):
            previous = last.mask
        else:
            current, _ = session.mask(k)
            if current is not None and (current == obj).any():
                previous = current == obj
        proposal = await run_in_threadpool(prompter.clicks, frame, k, obj, positive, negative, previous)
    session.proposal = proposal
    body = gzip.compress(proposal.mask.astype(np.uint8).tobytes(), compresslevel=1)
    headers = {
        "Content-Encoding": "gzip",
        "Cache-Control": "no-store",
        "X-Prompt-Model": prompter.name,
        "X-Proposal-Pixels": str(int(proposal.mask.sum())),
    }
    return Response(body, media_type="application/octet-stream", headers=headers)


@router.delete("/api/sessions/{sid}/objects/{obj}")
def delete_object(request: Request, sid: str, obj: int) -> dict:
    session = _session(request, sid)
    session.delete_object(obj)
    return session.info()


# ---- propagation -----------------------------------------------------------------------------------------


@router.post("/api/sessions/{sid}/propagate")
async def propagate(request: Request, sid: str) -> dict:
    session, data = await _session_async(request, sid), await _json(request)
    job = await run_in_threadpool(session.propagate, _int(data, "frame"), data.get("direction", "forward"))
    return job.summary()


@router.post("/api/sessions/{sid}/cancel")
def cancel(request: Request, sid: str) -> dict:
    session = _session(request, sid)
    session.cancel()
    return session.job.summary() if session.job else {}


@router.get("/api/sessions/{sid}/events")
async def events(request: Request, sid: str, job: int) -> StreamingResponse:
    """Progress of propagation ``job``: ``progress`` events (the frames finished since the last one),
    then one ``end`` event (finished / cancelled / failed, with a message)."""
    session = await _session_async(request, sid)
    run = session.job
    if run is None or run.id != job:
        raise AppError(404, f"no propagation {job} in this session")

    async def stream():
        sent = 0
        while True:
            state, n = run.state, len(run.done)  # in this order: a job ends after its last frame is listed
            if n > sent:
                frames, sent = run.done[sent:n], n
                yield f"data: {json.dumps({'type': 'progress', 'frames': frames, 'done': n, 'total': run.total})}\n\n"
            if state != "running":
                yield f"data: {json.dumps({'type': 'end', **run.summary()})}\n\n"
                return
            await asyncio.sleep(0.1)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


# ---- export ---------------------------------------------------------------------------------------------


@router.post("/api/sessions/{sid}/export")
async def export(request: Request, sid: str) -> dict:
    session, data = await _session_async(request, sid), await _json(request)
    kind = data.get("kind")
    if kind not in KINDS:
        raise AppError(400, f"'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    settings = _ctx(request).settings
    stem = re.sub(r"[^\w.-]+", "_", Path(session.video.name).stem).strip("._") or "video"
    folder = settings.export_folder(sid)
    name = await run_in_threadpool(free_name, folder, f"{stem}-{KINDS[kind]}")
    try:
        path = await run_in_threadpool(write_export, session, kind, folder / name)
    except BaseException:
        (folder / name).unlink(missing_ok=True)  # the placeholder that claimed the name
        raise
    return {
        "name": name,
        "url": f"/api/sessions/{sid}/exports/{name}",
        "saved": str(path) if settings.out is not None else None,
    }


@router.get("/api/sessions/{sid}/exports/{name}")
def download(request: Request, sid: str, name: str) -> FileResponse:
    _session(request, sid)
    settings = _ctx(request).settings
    if not re.match(r"^[\w.-]+$", name) or name.startswith("."):
        raise AppError(400, f"bad export name {name[:80]!r}")
    folder = settings.export_folder(sid)
    path = folder / name
    if not path.is_file():
        raise AppError(404, f"no export {name!r}: export it first")
    return FileResponse(path, filename=name)
