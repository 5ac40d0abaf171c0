"""``tamvt app``: a local web app to annotate a video and propagate the masks with the model.

The server composes the engine's public API (:mod:`tamvt.inference`) and serves a page written in
plain HTML / JavaScript / canvas (``static/``, no build step, nothing fetched from the network).

    settings.py   limits and paths of one server (a frozen dataclass)
    media.py      upload checks by content, decoding a video once, the bounded cache of decoded videos
    engine.py     the one model of the server: every call into :mod:`tamvt.inference` is there
    sessions.py   one annotation session per opened video: masks, objects, the propagation job; the ones in
                  memory (bounded; the idle or least recently used go to disk and are reopened on use)
    store.py      sessions on disk under the work folder (masks compressed, written atomically); the disk budget
    export.py     palette PNGs (zip), per-object binary PNGs (zip), overlay MP4, written atomically
    prompting.py  the Box and Click tools' model (``--prompt-model``, :mod:`tamvt.prompts`) and a session's proposal
    context.py    what one server holds (settings, model, video cache, sessions) and how sessions start
    server.py     the HTTP API (FastAPI) and the page
    static/       index.html, style.css; paint.js (mask drawing, pure), edit.js (tools), recent.js (Recent,
                  keep-alive, Back), view.js (zoom, pan, playback, the frame box), timeline.js (the painted
                  frames' marks), prompt.js (the Box and Click tools), notices.js, app.js (the rest)
"""
