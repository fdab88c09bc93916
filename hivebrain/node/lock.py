"""The node lock: one process at a time owns a data directory (a running node, or a rebuild);
others ask whether it is held, e.g. to know whether a node will apply their writes."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from hivebrain.errors import ConfigError


class NodeLock:
    """An exclusive lock on a data directory: one node (or one rebuild) at a time."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self._path, "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise ConfigError(
                f"a node is already running on {self._path.parent} (pid {owner}); stop it first"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    @staticmethod
    def held(path: Path) -> bool:
        """True while some process holds the lock."""
        if not path.exists():
            return False
        with open(path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False
