"""A concurrent static-file HTTP/1.0 server (standard library only).

Run `python3 http_server.py -h` for the options; the implementation lives in the httpd package.
"""

import sys

from httpd.cli import main

if __name__ == "__main__":
    sys.exit(main())
