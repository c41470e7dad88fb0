"""Broken on purpose: the lab-5 loop with no error handling around a connection, so a client
that resets mid-download raises out of the accept loop and the server exits (run it -c single)."""

from _base import Handler, main


class UnguardedHandler(Handler):
    """Lets a socket error escape."""

    def serve(self) -> None:
        """Answer one request; a socket error propagates (the bug)."""
        head = self.read_head()
        if head is not None:
            self.respond(head)
        self.close()


if __name__ == "__main__":
    main(UnguardedHandler, modes=("single",))
