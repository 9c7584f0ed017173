"""Loaded by ``bench/hoptrace.py``'s node processes (this folder is first on their
PYTHONPATH): wraps the steps of a hop and writes one line per step to
``$AMPARO_HOPTRACE/<pid>.log``: monotonic ns, process CPU ns, step, alert id.
Only ``amparo run`` with ``AMPARO_HOPTRACE`` set is touched; nothing else is.
Measurement only: the wrapped functions are called unchanged."""

from __future__ import annotations

import os
import sys

if os.environ.get("AMPARO_HOPTRACE") and "run" in sys.argv:
    import contextvars
    import time
    from typing import Any

    import node.mesh_api as _api
    import node.service as _service
    import node.transport as _transport
    from protocol import envelope_id

    _out = open(os.path.join(os.environ["AMPARO_HOPTRACE"], f"{os.getpid()}.log"), "a", buffering=1)  # noqa: SIM115
    _request: contextvars.ContextVar[list[tuple[int, int, str]] | None] = contextvars.ContextVar(
        "hop_request", default=None
    )
    _key: contextvars.ContextVar[str] = contextvars.ContextVar("hop_key", default="-")

    def _now() -> tuple[int, int]:
        return time.monotonic_ns(), time.process_time_ns()

    def _log(step: str, key: str) -> None:
        wall, cpu = _now()
        _out.write(f"{wall} {cpu} {step} {key}\n")

    def _first_id(raws: list[bytes]) -> str:
        try:
            return envelope_id(raws[0]).hex()[:16] if raws else "-"
        except Exception:  # a malformed envelope has no id to follow
            return "-"

    def _wrap_sync(owner: Any, name: str, key_of: Any) -> None:
        original = getattr(owner, name)

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            key = key_of(*args, **kwargs)
            _log(f"{name}.0", key)
            try:
                return original(*args, **kwargs)
            finally:
                _log(f"{name}.1", key)

        setattr(owner, name, wrapped)

    def _ingest_key(self: Any, raws: Any, *rest: Any, **kw: Any) -> str:
        key = _first_id(list(raws))
        for wall, cpu, step in _request.get() or []:  # the request's steps, now that its id is known
            _out.write(f"{wall} {cpu} {step} {key}\n")
        _request.set(None)
        return key

    # ingest_push gets a list; the wrapper reads it once before the call (lists are re-iterable)
    _wrap_sync(_service.NodeService, "ingest_push", _ingest_key)
    _wrap_sync(_service.NodeService, "_admit_relayed", lambda self, known, *rest: _key.get())

    _relay = _service.NodeService.relay

    async def relay(self: Any, raws: Any, *args: Any, **kwargs: Any) -> Any:
        key = _ingest_key(self, raws)
        _key.set(key)
        _log("relay.0", key)
        try:
            return await _relay(self, raws, *args, **kwargs)
        finally:
            _log("relay.1", key)

    _service.NodeService.relay = relay  # type: ignore[method-assign]

    import node.store.writer as _writer

    _write = _writer.GroupWriter._write

    def write(self: Any, group: Any) -> Any:
        keys = [s.rows[0].id.hex()[:16] for s in group if s.rows]
        for key in keys:
            _log("commit.0", key)
        try:
            return _write(self, group)
        finally:
            for key in keys:
                _log("commit.1", key)

    _writer.GroupWriter._write = write  # type: ignore[method-assign]
    _wrap_sync(_service.NodeService, "_store", lambda self, items: items[0].id.hex()[:16] if items else "-")
    _wrap_sync(_service.NodeService, "author", lambda self, env: env.id.hex()[:16])
    _wrap_sync(_service.NodeService, "publish", lambda self, env: env.id.hex()[:16])
    _wrap_sync(_service.NodeService, "_published", lambda self, items, *rest: items[0].id.hex()[:16] if items else "-")
    _wrap_sync(_service.NodeService, "_deliver", lambda self, row: row.id.hex()[:16] if row else "-")

    _push = _service.NodeService._push

    async def push(self: Any, peer: bytes, batch_id: int, raws: list[bytes], *rest: Any, **kwargs: Any) -> None:
        key = _first_id(raws)
        _key.set(key)
        _log("push.0", key)
        try:
            await _push(self, peer, batch_id, raws, *rest, **kwargs)
        finally:
            _log("push.1", key)

    _service.NodeService._push = push  # type: ignore[method-assign]

    _post = _transport.HttpWire.post

    async def post(self: Any, *args: Any, **kwargs: Any) -> Any:
        _log("post.0", _key.get())
        return await _post(self, *args, **kwargs)

    _transport.HttpWire.post = post  # type: ignore[method-assign]

    _handler = _api._push

    async def handler(request: Any) -> Any:
        wall, cpu = _now()
        _request.set([(wall, cpu, "handler.0")])
        return await _handler(request)

    _api._push = handler

    _authenticated = _api._authenticated

    async def authenticated(request: Any, **kwargs: Any) -> Any:
        steps = _request.get()
        result = await _authenticated(request, **kwargs)
        if steps is not None:
            wall, cpu = _now()
            steps.append((wall, cpu, "auth.1"))
        return result

    _api._authenticated = authenticated
