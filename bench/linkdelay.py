"""A user-space link delay for the benchmarks: a TCP forwarder that holds every
chunk for a fixed time before passing it on, in both directions.

Put in front of every mesh listener (peers dial the forwarder, which the node
advertises) and in front of the MQTT broker (every client connects through it),
so each hop the mesh makes and each hop through the broker costs the same
one-way delay: a request and its answer cost one round trip, a TLS handshake
its round trips, as on a real link. Chunks keep their order; a chunk read at
``t`` is written at ``t + delay``, however many are in flight (a pipe with
latency, not a slow one).
"""

from __future__ import annotations

import asyncio
import contextlib


class DelayLink:
    """Forwarders on loopback, each to one target port, all with one delay."""

    def __init__(self, delay_ms: float) -> None:
        self.delay = delay_ms / 1000
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def forward(self, target_port: int) -> int:
        """A new forwarder to ``127.0.0.1:target_port``; returns the port it listens on."""

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
            except OSError:
                writer.close()
                return
            for source, sink in ((reader, up_writer), (up_reader, writer)):
                task = asyncio.create_task(self._pipe(source, sink))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        server = await asyncio.start_server(accepted, "127.0.0.1", 0)
        self._servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        return port

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def read() -> None:
            try:
                while data := await reader.read(65536):
                    queue.put_nowait((loop.time() + self.delay, data))
            except OSError:
                pass
            queue.put_nowait(None)

        reading = asyncio.create_task(read())
        try:
            while (entry := await queue.get()) is not None:
                due, data = entry
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            await asyncio.sleep(max(0.0, self.delay))
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            pass
        finally:
            reading.cancel()
            writer.close()

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
