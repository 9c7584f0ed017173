"""A user-space link delay for the benchmarks: a TCP forwarder that holds every
chunk for a fixed time before passing it on, in both directions.

Put in front of every mesh listener (peers dial the forwarder, which the node
advertises) and in front of the MQTT broker (every client connects through it),
so each hop the mesh makes and each hop through the broker costs the same
one-way delay: a request and its answer cost one round trip, a TLS handshake
its round trips, as on a real link. Chunks keep their order; a chunk read at
``t`` is written at ``t + delay``, however many are in flight (a pipe with
latency, not a slow one).

The forwarders run in a process of their own (``python bench/linkdelay.py MS``,
driven over its stdin and stdout by ``DelayLink``), not on the event loop that
timestamps arrivals: the mesh's links carry far more chunks than the broker's,
and forwarding them on the measuring loop delayed the mesh's timestamps more
than the broker's. Each chunk costs one callback (``asyncio.Protocol``, a timer
per direction), not a task and a queue, so the emulated link takes as little as
it can of the cores the system under test runs on. ``tc netem`` would cost them
nothing, and it does not work on these machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections import deque


class DelayLink:
    """Forwarders on loopback, each to one target port, all with one delay, in
    a child process started at the first ``forward``."""

    def __init__(self, delay_ms: float) -> None:
        self.delay_ms = delay_ms
        self._proc: subprocess.Popen[str] | None = None

    async def forward(self, target_port: int) -> int:
        """A new forwarder to ``127.0.0.1:target_port``; returns the port it listens on."""
        if self._proc is None:
            self._proc = subprocess.Popen(
                [sys.executable, __file__, str(self.delay_ms)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(f"{target_port}\n")
        self._proc.stdin.flush()
        answer = self._proc.stdout.readline()  # set-up only: a blocking read is fine
        if not answer.strip().isdigit():
            raise RuntimeError(f"the link-delay process did not open a forwarder to {target_port}: {answer!r}")
        return int(answer)

    async def connections(self) -> int:
        """Connections the forwarders have accepted so far: a connection opened
        on a delayed link costs its handshakes' round trips before any request."""
        if self._proc is None:
            return 0
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write("connections\n")
        self._proc.stdin.flush()
        return int(self._proc.stdout.readline())

    async def close(self) -> None:
        """Stop every forwarder: the process ends when its stdin closes."""
        if self._proc is None:
            return
        assert self._proc.stdin is not None
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


class _Delayed:
    """One direction of a forwarded connection: what is read at ``t`` is written
    to ``sink`` at ``t + delay``, in order; ``None`` stands for the end."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self.loop = loop
        self.delay = delay
        self.sink: asyncio.Transport | None = None  # set once the far side is connected
        self._queue: deque[tuple[float, bytes | None]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def put(self, data: bytes | None) -> None:
        due = self.loop.time() + self.delay
        self._queue.append((due, data))
        if self._timer is None:
            self._timer = self.loop.call_at(due, self.flush)

    def flush(self) -> None:
        self._timer = None
        if self.sink is None:
            return  # ``connected`` flushes again
        now = self.loop.time()
        while self._queue and self._queue[0][0] <= now:
            _, data = self._queue.popleft()
            if data is None:
                self.sink.close()  # writes what is buffered, then closes
                self._queue.clear()
                return
            self.sink.write(data)
        if self._queue:
            self._timer = self.loop.call_at(self._queue[0][0], self.flush)

    def connected(self, sink: asyncio.Transport) -> None:
        self.sink = sink
        if self._timer is None and self._queue:
            self.flush()


class _Side(asyncio.Protocol):
    """One socket of a forwarded connection: reads into ``out``, the direction
    towards the other socket."""

    def __init__(self, out: _Delayed) -> None:
        self.out = out
        self.transport: asyncio.Transport | None = None
        self.partner: _Side | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.out.put(data)

    def eof_received(self) -> bool:
        self.out.put(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.out.put(None)

    def pause_writing(self) -> None:  # the far side reads faster than this one drains
        if self.partner is not None and self.partner.transport is not None:
            self.partner.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.partner is not None and self.partner.transport is not None:
            self.partner.transport.resume_reading()


_DIALS: set[asyncio.Task[None]] = set()
_ACCEPTED = [0]  # connections accepted by every forwarder of this process


async def _open_forwarder(target_port: int, delay: float) -> int:
    loop = asyncio.get_running_loop()

    def accepted() -> _Side:
        _ACCEPTED[0] += 1
        upstream_bound = _Delayed(loop, delay)  # what the dialler sends
        downstream_bound = _Delayed(loop, delay)  # what the target answers
        near = _Side(upstream_bound)

        async def dial() -> None:
            try:
                far_transport, far = await loop.create_connection(
                    lambda: _Side(downstream_bound), "127.0.0.1", target_port
                )
            except OSError:
                if near.transport is not None:
                    near.transport.close()
                return
            near.partner, far.partner = far, near
            upstream_bound.connected(far_transport)
            assert near.transport is not None
            downstream_bound.connected(near.transport)

        task = loop.create_task(dial())
        _DIALS.add(task)  # the loop holds tasks weakly
        task.add_done_callback(_DIALS.discard)
        return near

    server = await loop.create_server(accepted, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    return port


async def _serve(delay_ms: float) -> None:
    """Read target ports from stdin, one per line; answer each with the port of
    its forwarder, and ``connections`` with the count accepted so far. Ends when
    stdin closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"connections":
            sys.stdout.write(f"{_ACCEPTED[0]}\n")
        else:
            sys.stdout.write(f"{await _open_forwarder(int(line), delay_ms / 1000)}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(_serve(float(sys.argv[1])))
