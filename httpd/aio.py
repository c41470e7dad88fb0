"""The async mode: asyncio streams over the same sans-IO core.

Strategy: asyncio.start_server runs `handle` as one task per connection. It feeds what arrives to
the RequestParser under a timeout, waits the delay with asyncio.sleep (the loop never blocks),
writes the head and streams files with loop.sendfile a bounded chunk at a time. Shutdown: serve
what is already queued, stop listening (new connections are refused), close connections that
have not sent a byte within a short grace, and await the rest.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from httpd.connection import (
    DRAIN_LIMIT,
    DRAIN_SECONDS,
    RECV_SIZE,
    ConnectionLog,
    Settings,
    connection_log,
    describe,
    needs_drain,
)
from httpd.lifecycle import SHUTDOWN_GRACE, SHUTDOWN_SIGNALS, ShutdownSignals, accept_backlog
from httpd.protocol import HttpError, Request, RequestParser
from httpd.responses import Response, respond

LOG = logging.getLogger("http_server")
SENDFILE_CHUNK = 256 * 1024


class AsyncStrategy:
    """One event loop, one task per connection."""

    def run(self, listener: socket.socket, settings: Settings, signals: ShutdownSignals) -> None:
        """Serve until the first shutdown signal, then wait for the connections in flight.

        The loop is driven by hand rather than by asyncio.run, whose clean-up would cancel the
        tasks still running when a second signal forces the exit (and log each cancellation).
        """
        self.settings, self.signals = settings, signals
        loop = asyncio.new_event_loop()
        loop.run_until_complete(self._serve(listener))
        loop.close()

    def abort(self) -> None:
        """Nothing to kill: the loop's tasks die with the process."""

    async def _serve(self, listener: socket.socket) -> None:
        """Accept connections until a signal, then shut down in order."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for signum in SHUTDOWN_SIGNALS:
            loop.add_signal_handler(signum, self._on_signal, signum, stopping)
        self.idle: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task] = set()
        server = await asyncio.start_server(self._handle, sock=listener, limit=RECV_SIZE)
        await stopping.wait()
        for conn in accept_backlog(listener):
            self.tasks.add(asyncio.create_task(self._adopt(conn)))
        server.close()
        loop.call_later(SHUTDOWN_GRACE, self._close_idle)
        LOG.warning("shutting down: waiting for requests in flight (Ctrl-C again to force quit)")
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _adopt(self, conn: socket.socket) -> None:
        """Serve a connection that reached the listener's queue before the shutdown signal."""
        reader, writer = await asyncio.open_connection(sock=conn, limit=RECV_SIZE)
        await self._handle(reader, writer)

    def _close_idle(self) -> None:
        """Close the connections that have still not sent a byte, the shutdown grace after."""
        for writer in list(self.idle):
            writer.close()

    def _on_signal(self, signum: int, stopping: asyncio.Event) -> None:
        """First signal: start the shutdown. Second: ShutdownSignals raises ForcedExit."""
        self.signals.handle(signum)
        stopping.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve the single request of one connection, then close it."""
        task = asyncio.current_task()
        self.tasks.add(task)
        self.idle.add(writer)
        log = connection_log(writer.get_extra_info("socket"))
        try:
            await self._serve_connection(reader, writer, log)
        except (ConnectionError, TimeoutError) as error:
            log.debug("client went away: %r", error)
        except Exception:
            log.exception("unexpected failure")
        finally:
            self.idle.discard(writer)
            self.tasks.discard(task)
            writer.close()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: ConnectionLog
    ) -> None:
        """Read the request, wait if asked, answer, and drain if the client may still send."""
        outcome = await self._read_request(reader, writer)
        if outcome is None:
            log.debug("closed without sending a request")
            return
        log.debug("received %s", describe(outcome))
        if self.settings.delay:
            await asyncio.sleep(self.settings.delay)
        response = respond(outcome, self.settings.root)
        await self._send(writer, response)
        log.debug("answered %d", response.status)
        if needs_drain(outcome):
            await self._drain(reader, writer)

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Request | HttpError | None:
        """Receive until the head is complete; None when the client sent nothing at all."""
        parser = RequestParser()
        while True:
            try:
                async with asyncio.timeout(self.settings.timeout):
                    data = await reader.read(RECV_SIZE)
            except TimeoutError:
                data = None
            self.idle.discard(writer)
            if not data and not parser.started:
                return None
            if (outcome := parser.outcome(data)) is not None:
                return outcome

    async def _send(self, writer: asyncio.StreamWriter, response: Response) -> None:
        """Write the head and body, then stream the file in chunks, each under the timeout."""
        loop = asyncio.get_running_loop()
        try:
            writer.write(response.head() + response.body)
            for offset in range(0, response.file_size, SENDFILE_CHUNK):
                count = min(SENDFILE_CHUNK, response.file_size - offset)
                async with asyncio.timeout(self.settings.timeout):
                    await loop.sendfile(writer.transport, response.file, offset, count)
            async with asyncio.timeout(self.settings.timeout):
                await writer.drain()
        finally:
            response.close()

    async def _drain(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Close our side, then discard what the client still sends, for a bounded time."""
        writer.write_eof()
        received = 0
        async with asyncio.timeout(DRAIN_SECONDS):
            while received < DRAIN_LIMIT and (data := await reader.read(RECV_SIZE)):
                received += len(data)
