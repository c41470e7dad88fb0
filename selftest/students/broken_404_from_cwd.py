"""Broken on purpose (one rule: the 404 page comes from the served folder): reads www/404.html.

threads_processes.py whose 404 page is read from `www/404.html` in the working directory, where
the course's demo site happens to sit while the student tests.
"""

import sys

import threads_processes

send_error = threads_processes.send_error


def send_error_from_cwd(conn, status, folder):
    """Send the error page; for a 404, the one in ./www (not the -f folder)."""
    send_error(conn, status, "www" if status == 404 else folder)


threads_processes.send_error = send_error_from_cwd

if __name__ == "__main__":
    sys.exit(threads_processes.main())
