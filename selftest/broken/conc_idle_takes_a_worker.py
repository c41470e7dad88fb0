"""Broken on purpose: a connection is handed to a worker the moment it is accepted, so idle
(preconnected) connections tie up pool workers and keep threads busy at shutdown."""

from conc_patch import load, replace, run


def hand_over_at_once(self: object, conn: object) -> None:
    """Give the connection to the mode straight away, whether or not it has sent anything."""
    self.handoff(conn)


replace(load("httpd.dispatcher").Dispatcher, "route", hand_over_at_once)

if __name__ == "__main__":
    run()
