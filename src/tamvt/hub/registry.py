"""Named models: the one shipped in the package and the authors' published checkpoints, fetched
on demand into a cache and converted to tamvt's format once.

Cache (``$TAMVT_HOME``, default ``~/.cache/tamvt``), one folder per model::

    models/official-vost/
        tamvt_vost.pth                  the authors' file, as downloaded (or put there by hand)
        tamvt_vost.pth.json             its url, size and sha256, recorded when it arrived
        tamvt_vost.pth.part(.json)      an unfinished download (resumed by the next fetch)
        official-vost.safetensors       the converted tamvt checkpoint (what ``--checkpoint NAME`` loads)
        official-vost.safetensors.json  its size and sha256
    models/sam2.1-hiera-tiny/
        sam2.1_hiera_tiny.pt            Meta's SAM 2.1 file, used as it is (a prompt model: no conversion)
        sam2.1_hiera_tiny.pt.json       its url, size and sha256

The authors publish no size or digest, so the first fetch records them and later uses check them:
the size on every use, the sha256 on ``tamvt weights fetch``. Tests and mirrors point a model at
another URL with ``TAMVT_WEIGHTS_URL_<NAME>`` (name upper-cased, ``-`` and ``.`` -> ``_``, e.g.
``TAMVT_WEIGHTS_URL_OFFICIAL_VOST``, ``TAMVT_WEIGHTS_URL_SAM2_1_HIERA_TINY``). Nothing is read
from the environment at import time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tamvt.atomic import write_text_atomic
from tamvt.errors import InputError, TamvtError
from tamvt.hub.download import DownloadError, download, sha256_file

_DRIVE = "https://drive.google.com/uc?export=download&id={}"
_DRIVE_PAGE = "https://drive.google.com/file/d/{}/view"


@dataclass(frozen=True)
class ModelEntry:
    """One named model: either a file shipped in the package or a download to convert.

    Attributes:
        name: what ``--checkpoint`` and ``tamvt weights`` accept.
        summary: one line for ``tamvt weights list``.
        package_file: file name under ``tamvt/weights`` (shipped models).
        url: where the authors' ``.pth`` is downloaded from (downloaded models).
        page: where a person downloads it by hand (a browser page).
        filename: the downloaded file's name in the cache.
        size / sha256: of the download, when known in advance (else recorded on first fetch).
        prompt_model: a ``--prompt-model`` (SAM 2), used as downloaded: not converted, and refused
            by ``--checkpoint``.
    """

    name: str
    summary: str
    package_file: str | None = None
    url: str | None = None
    page: str | None = None
    filename: str | None = None
    size: int | None = None
    sha256: str | None = None
    prompt_model: bool = False

    def source_url(self) -> str:
        """``url``, or the override in ``TAMVT_WEIGHTS_URL_<NAME>``."""
        override = os.environ.get("TAMVT_WEIGHTS_URL_" + re.sub(r"[^A-Z0-9]", "_", self.name.upper()))
        if override:
            return override
        assert self.url is not None, self.name
        return self.url


def _drive(name: str, file_id: str, filename: str, summary: str) -> ModelEntry:
    return ModelEntry(name, summary, url=_DRIVE.format(file_id), page=_DRIVE_PAGE.format(file_id), filename=filename)


MODELS: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        ModelEntry(
            "mini-synthetic",
            "tamvt-mini (narrow ResNet-18), trained on synthetic videos only; shipped in the package",
            package_file="tamvt-mini-synthetic.safetensors",
        ),
        ModelEntry(
            "mini-synthetic-base",
            "the 9000-step synthetic-small run mini-synthetic was fine-tuned from (the default "
            "until 2026-12; where synthetic-long starts); shipped in the package",
            package_file="tamvt-mini-synthetic-base.safetensors",
        ),
        # Google Drive ids from the README of github.com/davidhalladay/TAM-VT
        _drive(
            "official-vost",
            "1Cw5v6DvwqtPJD_37STRuJo5cv52Tk3xb",
            "tamvt_vost.pth",
            "the authors' TAM-VT (ResNet-50), fine-tuned on VOST",
        ),
        _drive(
            "official-static",
            "1ibmXIgRTIXP4pHzBOEfYCc7MFrngVWcc",
            "tamvt_static.pth",
            "the authors' TAM-VT (ResNet-50), pre-trained on static images",
        ),
        ModelEntry(
            "sam2.1-hiera-tiny",
            "Meta's SAM 2.1 (Hiera-T) image predictor: a --prompt-model, not a tracking checkpoint",
            url="https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt",
            page="https://github.com/facebookresearch/sam2#download-checkpoints",
            filename="sam2.1_hiera_tiny.pt",
            prompt_model=True,
        ),
    )
}


def get_entry(name: str) -> ModelEntry:
    if name not in MODELS:
        raise TamvtError(f"unknown model {name!r} (known: {', '.join(MODELS)})")
    return MODELS[name]


def home() -> Path:
    """The cache folder: ``$TAMVT_HOME``, default ``~/.cache/tamvt``."""
    return Path(os.environ.get("TAMVT_HOME") or Path.home() / ".cache" / "tamvt").expanduser()


def download_path(entry: ModelEntry) -> Path:
    """Where the model's source file lives: the package file, or the download in the cache."""
    if entry.package_file:
        from importlib import resources

        return Path(str(resources.files("tamvt") / "weights" / entry.package_file))
    assert entry.filename is not None, entry.name
    return home() / "models" / entry.name / entry.filename


def checkpoint_path(entry: ModelEntry) -> Path:
    """The tamvt checkpoint of the model (for a download: the converted file in the cache; for a
    prompt model: the download itself)."""
    if entry.package_file or entry.prompt_model:
        return download_path(entry)
    return home() / "models" / entry.name / f"{entry.name}.safetensors"


def status(entry: ModelEntry) -> str:
    """One word or two for ``tamvt weights list`` (reads no file content)."""
    if entry.package_file:
        return "in the package" if download_path(entry).is_file() else "missing from this install"
    if checkpoint_path(entry).is_file() and (not entry.prompt_model or _record_path(checkpoint_path(entry)).is_file()):
        return "ready"
    src = download_path(entry)
    if src.is_file():
        return "downloaded, not converted"
    part = src.with_name(src.name + ".part")
    if part.is_file():
        return f"partial ({part.stat().st_size / 2**20:.0f} MiB)"
    return "not downloaded"


def fetch(name: str, *, progress: bool = True, verify: bool = True, timeout: float = 20.0) -> Path:
    """The tamvt checkpoint of model ``name``, downloaded and converted first if needed.

    A model already converted costs no network I/O; its recorded size is checked, and with
    ``verify`` its sha256 too. A source file put into the cache by hand (see :func:`download_path`)
    is recorded and converted. A prompt model (``entry.prompt_model``) is returned as downloaded.

    Raises:
        TamvtError: unknown name; a failed download (one line: the URL, the reason, and where to
            put the file by hand); a cached file that no longer matches its record.
    """
    entry = get_entry(name)
    if entry.package_file:
        path = download_path(entry)
        if not path.is_file():
            raise InputError(path, f"model {name!r} is missing from this install of tamvt")
        return path
    ckpt, src = checkpoint_path(entry), download_path(entry)
    with _locked(ckpt.parent):
        if ckpt.is_file() and _record_path(ckpt).is_file():
            _verify_record(ckpt, name, full=verify)
            return ckpt
        if src.is_file() and _record_path(src).is_file():
            _verify_record(src, name, full=True)
        elif src.is_file():  # put there by hand: record what it is now
            _write_record(
                src, {"url": None, "size": src.stat().st_size, "sha256": sha256_file(src), "added": "by hand"}
            )
        else:
            url = entry.source_url()
            try:
                got = download(
                    url,
                    src,
                    timeout=timeout,
                    expected_size=entry.size,
                    expected_sha256=entry.sha256,
                    progress=progress,
                    desc=name,
                )
            except DownloadError as err:
                raise TamvtError(
                    f"cannot download {name} from {err.url}: {err.problem}. Download it by hand "
                    f"from {entry.page or url}, save it as {src} (`tamvt weights path {name}`) "
                    f"and run `tamvt weights fetch {name}` again"
                ) from None
            _write_record(src, {"url": url, "size": got.size, "sha256": got.sha256, "added": _now()})
        if entry.prompt_model:
            return src
        if progress:
            print(f"{name}: converting {src.name} to tamvt's format", file=sys.stderr, flush=True)
        _convert(src, ckpt, name)
    return ckpt


def resolve_checkpoint(text: str | Path | None, *, progress: bool = True) -> Path:
    """The checkpoint file that a ``--checkpoint`` value (or ``init_from``) means.

    ``None`` or ``""``: the model shipped in the package. An existing file or folder: itself. A
    model name of :data:`MODELS` (see ``tamvt weights list``): its tamvt checkpoint, fetched and
    converted on first use. Anything else is returned as a path for the loader to report, unless
    it looks like a name (no folder, no suffix): then an error lists the known names.
    """
    from tamvt.checkpoint import shipped_model_path

    if text is None or str(text) == "":
        return shipped_model_path()
    path = Path(text)
    if path.exists():
        return path
    if str(text) in MODELS:
        if MODELS[str(text)].prompt_model:
            raise TamvtError(
                f"{text} is a prompt model (a box or clicks -> a mask), not a tracking checkpoint; "
                f"use it as --prompt-model {text}"
            )
        return fetch(str(text), progress=progress, verify=False)
    if len(path.parts) == 1 and not path.suffix:
        raise InputError(path, f"no such file, and not a model name (known: {', '.join(MODELS)})")
    return path


def _convert(src: Path, ckpt: Path, name: str) -> None:
    from tamvt.checkpoint import save_checkpoint
    from tamvt.official import convert_official, load_official_checkpoint, official_state_dict

    record = json.loads(_record_path(src).read_text(encoding="utf-8"))
    raw = load_official_checkpoint(src)
    ema = "model_ema" in raw  # the EMA weights, as the authors evaluate; a bare 'model' otherwise
    try:
        model, cfg = convert_official(official_state_dict(raw, ema=ema))
    except TamvtError as err:
        raise InputError(src, f"cannot convert {name}: {err}") from None
    save_checkpoint(
        ckpt,
        model,
        cfg,
        {
            "source": name,
            "file": src.name,
            "url": record.get("url"),
            "sha256": record["sha256"],
            "weights": "model_ema" if ema else "model",
        },
    )
    _write_record(
        ckpt,
        {"size": ckpt.stat().st_size, "sha256": sha256_file(ckpt), "source_sha256": record["sha256"], "added": _now()},
    )


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _write_record(path: Path, record: dict) -> None:
    write_text_atomic(_record_path(path), json.dumps(record, indent=2) + "\n")


def _verify_record(path: Path, name: str, *, full: bool) -> None:
    """``path`` still has the size (and with ``full`` the sha256) recorded beside it."""
    try:
        record = json.loads(_record_path(path).read_text(encoding="utf-8"))
        size, digest = int(record["size"]), str(record["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            _record_path(path), f"unreadable record; delete it and run `tamvt weights fetch {name}`"
        ) from None
    now = path.stat().st_size
    problem = f"is {now} bytes, {size} were recorded" if now != size else None
    if problem is None and full and sha256_file(path) != digest:
        problem = f"sha256 differs from the recorded {digest}"
    if problem:
        raise InputError(
            path, f"{problem}: the file changed or is damaged; delete it and run `tamvt weights fetch {name}`"
        )


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (two processes fetching one model take turns)."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(folder / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
