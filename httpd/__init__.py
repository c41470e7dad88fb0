"""The implementation of http_server.py: a concurrent static-file HTTP/1.0 server, stdlib only.

Read it in this order: protocol (bytes to a Request), responses (a Request to a Response),
connection (one blocking connection), dispatcher (the accept loop of the blocking modes),
strategies (one small class per concurrency mode), overload (the 503 when no thread or process
can start), aio and selectloop (the event-loop modes), lifecycle (signals and shutdown), cli (the
command line).
"""
