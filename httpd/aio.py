"""The async mode: asyncio's event loop, with one Protocol object per connection.

Strategy: the loop watches the listener, and asyncio wraps each accepted socket in a transport
and an HttpProtocol, which it calls when bytes arrive (`data_received`), when the client closes
its side (`eof_received`) and when the connection is gone (`connection_lost`). Nothing ever
blocks: the bytes go to the same sans-IO RequestParser as in every other mode, and the waits are
loop.call_later timers (the idle timeout, the delay before answering, the drain limit). A small
file comes inlined in the response and goes out with its head in one write; a larger one is
streamed by a task with loop.sendfile, a bounded chunk at a time (a chunk cut short means the
file shrank: the connection is closed). After the answer, our side is shut and what the client
still sends is discarded until it closes, or for a bounded time: closing with unread input would
reset the connection and destroy the answer in flight. Shutdown: serve what is already
queued, stop listening (new connections are refused), close connections that have not sent a
byte within a short grace, and wait for the rest.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from httpd.connection import (
    DRAIN_LIMIT,
    DRAIN_SECONDS,
    Settings,
    connection_log,
)
from httpd.dispatcher import accept_burst, close_listener
from httpd.lifecycle import SHUTDOWN_GRACE, SHUTDOWN_SIGNALS, ShutdownSignals, accept_backlog
from httpd.protocol import HttpError, Request, RequestParser
from httpd.responses import Response, respond

LOG = logging.getLogger("http_server")
SENDFILE_CHUNK = 256 * 1024


class AsyncStrategy:
    """One event loop; a Protocol per connection, all of them in `connections`."""

    def run(self, listener: socket.socket, settings: Settings, signals: ShutdownSignals) -> None:
        """Serve until the first shutdown signal, then until the last connection is closed.

        The loop is driven by hand rather than by asyncio.run, whose clean-up would cancel the
        streams still running when a second signal forces the exit (and log each cancellation).
        """
        self.settings, self.signals = settings, signals
        self.connections: set[HttpProtocol] = set()
        self.adopting: set[asyncio.Task] = set()
        self.all_closed: asyncio.Future[None] | None = None
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._serve(listener))
        self.loop.close()

    def abort(self) -> None:
        """Nothing to kill: the connections die with the process."""

    def forget(self, protocol: HttpProtocol) -> None:
        """A connection is closed; at shutdown, the last one ends the wait."""
        self.connections.discard(protocol)
        if not self.connections and self.all_closed is not None and not self.all_closed.done():
            self.all_closed.set_result(None)

    async def _serve(self, listener: socket.socket) -> None:
        """Accept connections until a signal, then shut down in order (the shutdown grace
        counts from the signal, however long the queued connections take to adopt).

        The loop watches the listener itself (rather than through loop.create_server), so that at
        the signal it can stop accepting, take what is already queued and close the listener,
        and still complete every connection it accepted on the way.
        """
        stopping = asyncio.Event()
        for signum in SHUTDOWN_SIGNALS:
            self.loop.add_signal_handler(signum, self._on_signal, signum, stopping)
        listener.setblocking(False)
        self.loop.add_reader(listener, self._accept, listener)
        await stopping.wait()
        grace_end = self.loop.time() + SHUTDOWN_GRACE
        self.loop.remove_reader(listener)
        for conn in accept_backlog(listener):
            self._adopt(conn)
        close_listener(listener)
        LOG.warning("shutting down: waiting for requests in flight (Ctrl-C again to force quit)")
        await asyncio.gather(*self.adopting, return_exceptions=True)
        self.loop.call_at(grace_end, self._close_silent)
        self.all_closed = self.loop.create_future()
        if not self.connections:
            self.all_closed.set_result(None)
        await self.all_closed

    def _accept(self, listener: socket.socket) -> None:
        """The listener is readable: adopt the connections waiting there (a bounded burst)."""
        for conn in accept_burst(listener):
            self._adopt(conn)

    def _adopt(self, conn: socket.socket) -> None:
        """Have asyncio wrap an accepted socket in a transport and an HttpProtocol."""
        task = self.loop.create_task(
            self.loop.connect_accepted_socket(lambda: HttpProtocol(self), conn)
        )
        self.adopting.add(task)
        task.add_done_callback(self._adopted)

    def _adopted(self, task: asyncio.Task) -> None:
        """The protocol of an accepted connection is running (or the connection failed first)."""
        self.adopting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            LOG.debug("a connection failed before it started: %r", task.exception())

    def _close_silent(self) -> None:
        """Close the connections that have still not sent a byte, the shutdown grace after."""
        for protocol in list(self.connections):
            protocol.close_if_silent()

    def _on_signal(self, signum: int, stopping: asyncio.Event) -> None:
        """First signal: start the shutdown. Second: ShutdownSignals raises ForcedExit."""
        self.signals.handle(signum)
        stopping.set()


class HttpProtocol(asyncio.Protocol):
    """One connection: read the head, wait the delay, answer, drain if needed, close.

    `timer` is the one pending timer of the connection: the idle timeout while reading, the
    delay before answering, the limit on draining or on a client that stops reading the answer.
    """

    def __init__(self, strategy: AsyncStrategy) -> None:
        """Prepare the parser; the connection itself arrives in `connection_made`."""
        self.strategy = strategy
        self.settings, self.loop = strategy.settings, strategy.loop
        self.parser = RequestParser()
        self.outcome: Request | HttpError | None = None
        self.streaming: asyncio.Task | None = None
        self.draining = False
        self.drained = 0

    def connection_made(self, transport: asyncio.Transport) -> None:
        """Keep the transport, join the live connections and start the idle timeout."""
        self.transport = transport
        self.strategy.connections.add(self)
        self.log = connection_log(transport.get_extra_info("socket"))
        self.timer = self.loop.call_later(self.settings.timeout, self._timed_out)

    def data_received(self, data: bytes) -> None:
        """Feed the parser; discard what arrives once the head is complete (a body)."""
        if self.draining:
            self.drained += len(data)
            if self.drained > DRAIN_LIMIT:
                self._close()
        elif self.outcome is None:
            self.timer.cancel()
            if (outcome := self.parser.outcome(data)) is not None:
                self._received(outcome)
            else:
                self.timer = self.loop.call_later(self.settings.timeout, self._timed_out)

    def eof_received(self) -> bool:
        """The client closed its side: answer a partial head with 400, close a silent one.

        Returns:
            True to keep our side open while an answer is still to be written.
        """
        if self.draining:
            return False
        if self.outcome is None:
            if not self.parser.started:
                self.log.debug("closed without sending a request")
                return False
            self.timer.cancel()
            self._received(self.parser.outcome(b""))
        return True

    def connection_lost(self, error: Exception | None) -> None:
        """The connection is gone: stop its timer and stream, and leave the live set."""
        if error is not None:
            self.log.debug("client went away: %r", error)
        self.timer.cancel()
        if self.streaming is not None:
            self.streaming.cancel()
        self.strategy.forget(self)

    def close_if_silent(self) -> None:
        """At shutdown: close the connection if it has not sent a byte."""
        if self.outcome is None and not self.parser.started:
            self.transport.close()

    def _timed_out(self) -> None:
        """No byte for `--timeout` seconds: close a silent connection, answer 408 to the rest."""
        if self.parser.started:
            self._received(self.parser.outcome(None))
        else:
            self.log.debug("closed without sending a request")
            self.transport.close()

    def _received(self, outcome: Request | HttpError) -> None:
        """The head is complete (or invalid): wait the delay, then answer."""
        self.log.received(outcome)
        self.outcome = outcome
        if self.settings.delay:
            self.timer = self.loop.call_later(self.settings.delay, self._answer)
        else:
            self._answer()

    def _answer(self) -> None:
        """Write the response; a file too large to come inlined in its body goes from a task."""
        try:
            response = respond(self.outcome, self.settings.root, self.settings.dotfiles)
        except Exception:
            self.log.exception("unexpected failure")
            self.transport.abort()
            return
        self.transport.write(response.head() + response.body)
        if response.file is None:
            self._finish(response)
        else:
            self.streaming = self.loop.create_task(self._stream(response))

    async def _stream(self, response: Response) -> None:
        """Send the file zero-copy, a chunk at a time, each chunk under the idle timeout.

        loop.sendfile raises RuntimeError when the transport is already closing (the client
        left between two chunks): that ends the stream like a reset does.
        """
        try:
            for offset in range(0, response.file_size, SENDFILE_CHUNK):
                count = min(SENDFILE_CHUNK, response.file_size - offset)
                async with asyncio.timeout(self.settings.timeout):
                    sent = await self.loop.sendfile(self.transport, response.file, offset, count)
                if sent < count:
                    response.log_shrunk(self.log, offset + sent)
                    self.transport.close()
                    return
        except (OSError, RuntimeError) as error:
            self.log.debug("client went away: %r", error)
            self.transport.abort()
            return
        finally:
            response.close()
        self._finish(response)

    def _finish(self, response: Response) -> None:
        """The answer is written: end our side, then drain what the client still sends."""
        self.log.answered(response)
        self.draining = True
        self.transport.write_eof()
        self.timer = self.loop.call_later(DRAIN_SECONDS, self._close)

    def _close(self) -> None:
        """Close once the answer is sent; a client that stops reading it gets `--timeout` s."""
        self.timer.cancel()
        self.transport.close()
        if self.transport.get_write_buffer_size():
            self.timer = self.loop.call_later(self.settings.timeout, self.transport.abort)
