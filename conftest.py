"""Repository-wide pytest setup: load the grading suite's harness plugin."""

pytest_plugins = ["harness.plugin"]
