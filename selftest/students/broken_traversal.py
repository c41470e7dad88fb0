"""Broken on purpose (one rule: security): joins the URL path onto the folder without checking.

threads_processes.py with `find_file` as a student writes it before thinking of `..`: the
decoded path is glued onto the folder and opened wherever it points.
"""

import os
import sys
import urllib.parse

import threads_processes


def find_file(folder, path):
    """Return folder + path if it is a file, wherever that is."""
    wanted = os.path.join(folder, urllib.parse.unquote(path.split("?", 1)[0]).lstrip("/"))
    return wanted if os.path.isfile(wanted) else None


threads_processes.find_file = find_file

if __name__ == "__main__":
    sys.exit(threads_processes.main())
