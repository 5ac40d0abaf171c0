"""Named models (``--checkpoint official-vost``): a small registry, a download cache, and the
resumable downloader behind ``tamvt weights``.

- :mod:`tamvt.hub.registry`: the names, the cache layout, :func:`fetch`, :func:`resolve_checkpoint`;
- :mod:`tamvt.hub.download`: one resumable HTTP download (Google Drive's confirmation page handled).
"""

from tamvt.hub.download import DownloadError
from tamvt.hub.registry import MODELS, ModelEntry, checkpoint_path, download_path, fetch, home, resolve_checkpoint

__all__ = [
    "MODELS",
    "DownloadError",
    "ModelEntry",
    "checkpoint_path",
    "download_path",
    "fetch",
    "home",
    "resolve_checkpoint",
]
