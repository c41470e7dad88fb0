"""Evidence for a failed check, in the words a student reads: what was sent, what came back.

Strategy: a failing test attaches at most three examples with
`record_property("evidence", [...])`; each example is a dict of short strings built here, so every
test words the same outcome the same way ("no response in 5 s", "connection reset", "server
killed by SIGPIPE") and the grader never parses tracebacks. A server's death is worded from its
exit status; the callers leave out deaths the suite asked for (its own SIGINT at the end of a test).
"""

from __future__ import annotations

import signal

from harness.client import Reply

MAX_REQUEST = 200
MAX_EXAMPLES = 3
HEAD_LINES = 4
STDERR_LINES = 8


def shorten(data: bytes | str, limit: int = MAX_REQUEST) -> str:
    """Return `data` escaped (repr without quotes), cut to `limit` characters with a marker."""
    shown = repr(data.encode("latin-1") if isinstance(data, str) else data)[2:-1]
    return shown if len(shown) <= limit else f"{shown[: limit - 3]}..."


def exit_words(status: int) -> str:
    """Return an exit status in words: "server exited with status 1", "server killed by SIGPIPE"."""
    if status >= 0:
        return f"server exited with status {status}"
    try:
        return f"server killed by {signal.Signals(-status).name}"
    except ValueError:
        return f"server killed by signal {-status}"


def response_words(reply: Reply, timeout: float = 5.0) -> str:
    """Return what came back: the status line and first header lines, or what happened instead."""
    if reply.outcome in ("response", "malformed") and reply.head:
        lines = reply.head.decode("latin-1").replace("\r\n", "\n").strip("\n").split("\n")
        shown = lines[:HEAD_LINES] + (["..."] if len(lines) > HEAD_LINES else [])
        return shorten("\n".join(shown).encode("latin-1"), 300)
    if reply.outcome == "timeout":
        return f"no response in {timeout:g} s"
    if reply.outcome == "reset":
        return "connection reset"
    if reply.outcome == "refused":
        return "connection refused"
    return "connection closed with no response"


def example(
    request: bytes | str,
    got: str,
    expected: str,
    *,
    exit_status: int | None = None,
    stderr_tail: str = "",
) -> dict[str, str]:
    """Return one evidence dict; a server death adds `exit_status` and `stderr_tail`.

    Args: `got` is the response_words of the reply (replaced by the death when the server died).
    """
    item = {"request": shorten(request), "response": got, "expected": expected}
    if exit_status is not None:
        item["response"] = exit_words(exit_status)
        item["exit_status"] = exit_words(exit_status)
        tail = stderr_tail.splitlines()[-STDERR_LINES:]
        item["stderr_tail"] = "\n".join(tail)
    return item
