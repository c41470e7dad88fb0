"""Self-test of the grading suite: broken servers it must catch, and the harness itself."""
