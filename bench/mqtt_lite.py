"""Just enough MQTT 3.1.1 for the broker baseline: connect, subscribe and publish
at QoS 1, on asyncio, so the baseline's clients run in the same event loop as
the mesh's listeners and can go through the same delay forwarders
(``bench.linkdelay``). No third-party client needed (paho-mqtt was the optional
``bench`` extra).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _text(value: str) -> bytes:
    data = value.encode()
    return struct.pack("!H", len(data)) + data


def _packet(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + _length(len(body)) + body


class MqttClient:
    """One connection; ``on_message(topic, payload)`` for every PUBLISH received."""

    def __init__(self, client_id: str, on_message: Callable[[str, bytes], None] | None = None) -> None:
        self.client_id = client_id
        self.on_message = on_message
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._packet_id = 0
        self._subacked = asyncio.Event()

    async def connect(self, host: str, port: int) -> None:
        reader, self._writer = await asyncio.open_connection(host, port)
        body = _text("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 60) + _text(self.client_id)
        self._writer.write(_packet(0x10, body))
        kind, payload = await self._read(reader)
        if kind >> 4 != 2 or payload[1] != 0:
            raise ConnectionError(f"MQTT broker refused the connection ({payload!r})")
        self._reading = asyncio.create_task(self._loop(reader))

    async def subscribe(self, topic: str) -> None:
        assert self._writer is not None
        self._subacked.clear()
        self._writer.write(_packet(0x82, struct.pack("!H", self._next_id()) + _text(topic) + b"\x01"))
        await asyncio.wait_for(self._subacked.wait(), 10)

    def publish(self, topic: str, payload: bytes) -> None:
        assert self._writer is not None
        self._writer.write(_packet(0x32, _text(topic) + struct.pack("!H", self._next_id()) + payload))

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.write(b"\xe0\x00")
            self._writer.close()
        if self._reading is not None:
            self._reading.cancel()

    def _next_id(self) -> int:
        self._packet_id = self._packet_id % 65535 + 1
        return self._packet_id

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[int, bytes]:
        kind = (await reader.readexactly(1))[0]
        length, shift = 0, 0
        while True:
            byte = (await reader.readexactly(1))[0]
            length += (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return kind, await reader.readexactly(length)

    async def _loop(self, reader: asyncio.StreamReader) -> None:
        assert self._writer is not None
        try:
            while True:
                kind, payload = await self._read(reader)
                if kind >> 4 == 3:  # PUBLISH
                    (size,) = struct.unpack("!H", payload[:2])
                    topic = payload[2 : 2 + size].decode()
                    rest = payload[2 + size :]
                    if (kind >> 1) & 3:  # QoS 1: acknowledge
                        self._writer.write(_packet(0x40, rest[:2]))
                        rest = rest[2:]
                    if self.on_message is not None:
                        self.on_message(topic, rest)
                elif kind >> 4 == 9:  # SUBACK
                    self._subacked.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
