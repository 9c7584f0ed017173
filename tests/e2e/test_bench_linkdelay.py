"""``bench/linkdelay.py``: the forwarder process that puts a fixed one-way delay
on every benchmark link. A request and its answer must cost one round trip,
bytes must keep their order, and a close must reach the other side."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.linkdelay import DelayLink  # noqa: E402


async def _echo_server() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_a_forwarded_round_trip_costs_twice_the_delay_and_keeps_every_byte_in_order() -> None:
    async def scenario() -> None:
        server, target = await _echo_server()
        link = DelayLink(60)
        try:
            port = await link.forward(target)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            start = time.monotonic()
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
            took = time.monotonic() - start
            assert 0.12 <= took < 2, took  # 60 ms there, 60 ms back

            sent = b"".join(i.to_bytes(4, "big") for i in range(200_000))  # 800 KB in many chunks
            for offset in range(0, len(sent), 7_000):
                writer.write(sent[offset : offset + 7_000])
            echoed = await asyncio.wait_for(reader.readexactly(len(sent)), 30)
            assert echoed == sent

            writer.write_eof()  # the echo server sees the end, closes, and that close comes back
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
        finally:
            await link.close()
            server.close()

    asyncio.run(scenario())


def test_a_forwarder_to_a_closed_port_closes_the_dialler() -> None:
    async def scenario() -> None:
        server, target = await _echo_server()
        server.close()
        await server.wait_closed()
        link = DelayLink(10)
        try:
            port = await link.forward(target)  # nothing listens there any more
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
        finally:
            await link.close()

    asyncio.run(scenario())
