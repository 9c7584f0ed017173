"""A fake peer's HTTPS listener on its own event loop, in a thread of the test
process: the hostile and impersonating peers of the end-to-end tests are
subclasses that only say which routes they answer and how."""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Self

from aiohttp import web

from node import tls


class ThreadedListener(ABC):
    """Serves ``app()`` over TLS with the certificate in ``home`` on ``port``
    while the ``with`` block runs."""

    def __init__(self, home: Path, port: int) -> None:
        self.home = home
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @abstractmethod
    def app(self) -> web.Application:
        """The routes this fake peer answers, and how."""

    def __enter__(self) -> Self:
        self._thread.start()
        assert self._ready.wait(10), "the fake listener did not start within 10 s"
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._runner = runner = web.AppRunner(self.app(), shutdown_timeout=0.1)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", self.port, ssl_context=tls.server_context(self.home))
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()
