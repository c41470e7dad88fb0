"""Broken on purpose: the accept loop reads each new connection's head itself, blocking, so an
idle (preconnected) connection holds up every other client and keeps the server from shutting
down."""

from conc_patch import load, replace, run

DISPATCHER = load("httpd.dispatcher")


def read_head_blocking(self: object, conn: object, head_deadline: float) -> None:
    """Read the whole head right here, waiting as long as the client likes, then hand it over."""
    conn.settimeout(None)
    head = DISPATCHER.Head(head_deadline=head_deadline, deadline=head_deadline)
    outcome = None
    while outcome is None:
        data = conn.recv(4096)
        if not data:
            conn.close()
            return
        outcome = head.parser.outcome(data)
    conn.setblocking(False)
    self.handoff(conn, outcome)


replace(DISPATCHER.Dispatcher, "_read_later", read_head_blocking)

if __name__ == "__main__":
    run()
