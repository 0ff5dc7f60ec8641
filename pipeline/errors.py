"""User-facing errors: raised for bad params, missing files and malformed input.

Stages print these as one clear line (no traceback) and exit with status 2, so a user can tell
"my input is wrong" apart from "the program crashed".
"""

from __future__ import annotations


class UserError(Exception):
    """An error the user can fix: the message names the file, line, field or valid choices."""


class DataError(UserError):
    """Malformed input data (with ``data.strict: true`` the first bad row raises this)."""

    def __init__(self, path: str, line: int, field: str, reason: str) -> None:
        self.path, self.line, self.field, self.reason = path, line, field, reason
        super().__init__(f"{path}:{line}: field '{field}': {reason}")
