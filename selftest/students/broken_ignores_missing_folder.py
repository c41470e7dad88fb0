"""Broken on purpose (one rule: class norms, exit codes): a missing -f folder is not an error.

threads_processes.py run without its folder check: it starts and answers 404 to everything.
"""

import threads_processes

if __name__ == "__main__":
    threads_processes.serve(threads_processes.parse_args())
