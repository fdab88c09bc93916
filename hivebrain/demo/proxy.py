"""A TCP proxy on 127.0.0.1 in front of a hub's leafnode port: closing it cuts one leaf's link
(and only that link), as a pulled cable or a dropped Wi-Fi would. Used by `hivebrain demo`,
the catch-up benchmark and the tests."""

from __future__ import annotations

import asyncio
import contextlib

from hivebrain.transport.server import free_port


class LinkProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target_port`. `cut()` drops every connection
    and refuses new ones until `restore()`."""

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"nats-leaf://127.0.0.1:{self.port}"

    @property
    def open(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def restore(self) -> None:
        if self._server is None:
            await self.start()
