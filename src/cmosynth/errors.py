"""Errors that reach people: one line naming the file, line or key and what to do.

The CLI prints `str(error)` of any `CmosynthError` and exits with code 2; anything
else is a bug and keeps its traceback.
"""


class CmosynthError(Exception):
    """Base class for errors caused by input, configuration or the outside world."""


class InputError(CmosynthError):
    """A file given by the user cannot be read: names the file and the line or record."""

    def __init__(self, path, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class ConfigError(CmosynthError):
    """A config or topic file breaks its schema: names the file and the key."""

    def __init__(self, path, key: str | None, message: str):
        self.path = str(path)
        self.key = key
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {message}")
