"""Broken on purpose: a thread per connection, but at most 256 at once, and a silent connection
holds its slot until its 60 s read timeout, so a few hundred silent connections lock everyone
out (50 idle ones, as in test_idle, do not)."""

from _base import Handler
from _front import serve_capped


class PatientHandler(Handler):
    """Waits a minute for a head."""

    head_timeout = 60.0


if __name__ == "__main__":
    serve_capped(PatientHandler, cap=256)
