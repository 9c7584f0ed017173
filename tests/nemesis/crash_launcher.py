"""A launcher for the crash run's hundreds of lives: it imports the node's code
once, then forks one new ``amparo run`` process per life.

On the shared two-core machine, importing the node (aiohttp, SQLAlchemy, PyNaCl,
the CLI) costs 1.5 to 5 s of a life that lasts a few seconds; the kills are meant
for the node's work, not for Python's imports. Each life is still a process of
its own (its own pid, session and log descriptors) that opens its home, store and
keys from disk exactly as ``amparo run`` does, and ``kill -9`` ends it the same
way. The fork copies the launcher's memory, including any random state a module
might set up at import: a nonce drawn from such state would repeat across lives,
so this is the harsher test for nonce reuse, not a gentler one.
``scripts/nemesis --crash --fresh-processes`` starts every life from scratch instead.

Protocol on stdin/stdout, one line each: ``spawn <home>`` → ``pid <pid>``; the
launcher reaps its children and says ``exit <pid> <code>`` (negative: the signal).
At end of input it kills the children still running and exits.
"""

from __future__ import annotations

import os
import select
import signal
import sys


def _child(home: str) -> None:
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    log = os.open(os.path.join(home, "node.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    code = 0
    try:
        from node.cli import cli

        cli.main(["--home", home, "run"], prog_name="amparo")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _say(line: str) -> None:
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # the harness is gone: nobody is left to tell
        pass


def _reap(children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _say(f"exit {pid} {os.waitstatus_to_exitcode(status)}")


def serve() -> None:
    import node.cli.node_commands
    import node.runner  # noqa: F401

    children: set[int] = set()
    pending = b""
    while True:
        ready, _, _ = select.select([0], [], [], 0.02)
        _reap(children)
        if not ready:
            continue
        chunk = os.read(0, 4096)
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            verb, _, home = line.decode().partition(" ")
            if verb != "spawn":
                continue
            pid = os.fork()
            if pid == 0:
                _child(home)
            children.add(pid)
            _say(f"pid {pid}")
    for pid in list(children):
        os.kill(pid, signal.SIGKILL)
    while children:
        _reap(children)


if __name__ == "__main__":
    serve()
