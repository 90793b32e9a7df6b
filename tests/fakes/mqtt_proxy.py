"""A TCP proxy between MQTT clients and a real broker that behaves like a bad network: it can
lose the clients' PUBACKs and cut every connection, so the broker redelivers for real."""

from __future__ import annotations

import asyncio
import contextlib

PUBACK = 4


class MqttProxy:
    """Listens on a free loopback port; forwards to `broker_host:broker_port`."""

    def __init__(self, broker_host: str, broker_port: int) -> None:
        self.broker = (broker_host, broker_port)
        self.drop_pubacks = False
        self.dropped = 0
        """PUBACKs lost so far."""
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"mqtt://127.0.0.1:{port}"

    async def start(self) -> MqttProxy:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        return self

    async def cut(self) -> None:
        """Drop every connection at once, as a network failure does."""
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    async def close(self) -> None:
        await self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    async def _link(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection(*self.broker)
        self._links |= {client_w, broker_w}
        for pump in (
            self._packets(client_r, broker_w, client_w),
            self._bytes(broker_r, client_w, broker_w),
        ):
            task = asyncio.create_task(pump)
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    async def _packets(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, peer: asyncio.StreamWriter
    ) -> None:
        """Client to broker, packet by packet, losing PUBACKs when told to."""
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                packet = await _read_packet(source)
                if self.drop_pubacks and packet[0] >> 4 == PUBACK:
                    self.dropped += 1
                    continue
                sink.write(packet)
                await sink.drain()
        _abort(sink, peer)

    async def _bytes(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, peer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        _abort(sink, peer)


async def _read_packet(reader: asyncio.StreamReader) -> bytes:
    """One MQTT control packet: fixed header, variable-length remaining length, the rest."""
    header = await reader.readexactly(1)
    length_bytes = b""
    length, shift = 0, 0
    while True:
        byte = await reader.readexactly(1)
        length_bytes += byte
        length |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            break
        shift += 7
    return header + length_bytes + await reader.readexactly(length)


def _abort(*writers: asyncio.StreamWriter) -> None:
    for writer in writers:
        writer.transport.abort()
