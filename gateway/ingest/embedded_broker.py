"""An embedded MQTT 3.1.1 broker (amqtt) for the demo and as the tests' last-resort broker.

The broker runs in a child process (``python -m gateway.ingest.embedded_broker``) so that its
event loop never competes with the gateway's; it relays about 3k msg/s, enough for a demo and
never meant for load. Clients must speak MQTT 3.1.1 to it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import TracebackType
from typing import IO, Any, Self

from amqtt.plugins.authentication import AnonymousAuthPlugin

__all__ = ["DEFAULT_PORT", "EmbeddedBroker", "free_port", "port_is_free"]

_DESCRIPTION = "Run an embedded MQTT 3.1.1 broker (amqtt) until SIGINT or SIGTERM."

DEFAULT_PORT = 1883
_READY_LINE = b"ready\n"
_STOP_GRACE_S = 5.0
_STDERR_TAIL_CHARS = 3000
_POLL_S = 0.05


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing is bound to right now."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _family(host: str) -> socket.AddressFamily:
    return socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][0]


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could bind ``host:port`` right now."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        # asyncio's servers set SO_REUSEADDR, so a port held only by TIME_WAIT connections
        # is free for the broker; without it the check would wrongly say "taken".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _accepts_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class EmbeddedBroker:
    """An amqtt broker in a child process, listening on one address; a sync context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        if port is None:
            port = DEFAULT_PORT if port_is_free(host, DEFAULT_PORT) else free_port(host)
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker's address as an ``mqtt://host:port`` URL."""
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> Self:
        """Launch the broker and return once it accepts TCP connections."""
        if self._process is not None:
            raise RuntimeError(f"embedded MQTT broker on {self.url} is already started")
        # stderr goes to a file, not a pipe: a pipe nobody drains would block a chatty child.
        self._log = tempfile.TemporaryFile(prefix="amqtt-", suffix=".log")  # noqa: SIM115
        command = [
            sys.executable,
            "-m",
            __name__,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--stop-on-stdin-eof",
        ]
        self._process = subprocess.Popen(  # noqa: S603 - our own module, no shell
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            # Out of the terminal's process group: Ctrl-C goes to the parent, which stops the
            # gateway first and the broker last (and stdin EOF stops it if the parent dies).
            start_new_session=True,
        )
        try:
            self._wait_until_ready(self._process, time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self, process: subprocess.Popen[bytes], deadline: float) -> None:
        # The child's "ready" line proves that *it* holds the port; a TCP connect alone could
        # reach another server that took the port between our check and the child's bind.
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                if time.monotonic() >= deadline:
                    raise RuntimeError(self._failure("did not start within the timeout"))
            line = process.stdout.readline()
        if line != _READY_LINE:
            process.wait(timeout=_STOP_GRACE_S)
            raise RuntimeError(self._failure(f"exited with code {process.returncode}"))
        while not _accepts_connections(self.host, self.port):
            if process.poll() is not None:
                raise RuntimeError(self._failure(f"exited with code {process.returncode}"))
            if time.monotonic() >= deadline:
                raise RuntimeError(self._failure("did not accept connections within the timeout"))
            time.sleep(_POLL_S)

    def _failure(self, what: str) -> str:
        return (
            f"embedded MQTT broker on {self.host}:{self.port} {what}; "
            f"its stderr ends with:\n{self._stderr_tail()}"
        )

    def _stderr_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        text = self._log.read().decode("utf-8", errors="replace")
        return text[-_STDERR_TAIL_CHARS:].strip() or "(nothing)"

    def stop(self) -> None:
        """Stop the broker: SIGTERM, then SIGKILL if it has not exited after 5 s."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=_STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# --- child process ---------------------------------------------------------------------------


class _SessionKeepingAnonymousAuth(AnonymousAuthPlugin):  # type: ignore[misc]
    """amqtt's anonymous auth, except that persistent sessions stay persistent."""

    async def authenticate(self, *, session: Any) -> bool:
        authenticated: bool = await super().authenticate(session=session)
        # The stock plugin marks every session anonymous, and amqtt neither queues QoS 1
        # messages for a disconnected anonymous session nor keeps its subscriptions: a
        # restarting gateway would lose everything published while it was away.
        session.is_anonymous = False
        return authenticated


def _broker_config(host: str, port: int) -> dict[str, Any]:
    auth = _SessionKeepingAnonymousAuth
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        # Only anonymous auth: amqtt's default logger and $SYS plugins halve its relay rate.
        "plugins": {f"{auth.__module__}.{auth.__qualname__}": {"allow_anonymous": True}},
    }


class _StopOnEof(asyncio.Protocol):
    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop

    def eof_received(self) -> None:
        self._stop.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop.set()


async def _stop_when_stdin_closes(stop: asyncio.Event) -> None:
    # The parent holds our stdin open and never writes to it: EOF means the parent has gone,
    # even if it died without calling stop(), so the broker does not outlive it holding a port.
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: _StopOnEof(stop), sys.stdin)


async def _serve(host: str, port: int, stop_on_stdin_eof: bool) -> None:
    from amqtt.broker import Broker  # here: the parent process never needs the broker itself

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if stop_on_stdin_eof:
        await _stop_when_stdin_closes(stop)
    broker = Broker(_broker_config(host, port))
    await broker.start()
    try:
        _announce_ready()
        await stop.wait()
    finally:
        await broker.shutdown()


def _announce_ready() -> None:
    sys.stdout.buffer.write(_READY_LINE)
    sys.stdout.buffer.flush()
    # Nothing else may reach the pipe: the parent stops reading it once the broker is ready.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Run the embedded broker in the foreground until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m gateway.ingest.embedded_broker", description=_DESCRIPTION
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default: %(default)s")
    parser.add_argument(
        "--stop-on-stdin-eof", action="store_true", help="stop when standard input is closed"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(_serve(args.host, args.port, args.stop_on_stdin_eof))
    except KeyboardInterrupt:
        # Ctrl-C reaches the whole process group; the parent reports it, the child stays quiet.
        return 130
    except Exception as exc:
        print(f"embedded MQTT broker failed on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
