"""Support package of the grading suite: server processes, raw HTTP client, fixture tree."""
