"""The one error type of the app's HTTP API: a message for the page and the HTTP status it goes with."""

from __future__ import annotations

from tamvt.errors import TamvtError


class AppError(TamvtError):
    """A request the server refuses: ``status`` is a 4xx code, ``str(error)`` the message shown in the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
