"""`python -m httpd`: the same command line as `python3 http_server.py`."""

import sys

from httpd.cli import main

if __name__ == "__main__":
    sys.exit(main())
