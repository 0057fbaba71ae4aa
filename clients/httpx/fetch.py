"""Fetches each URL given after the CA file and the protocol with one httpx client, in turn, as an
application would that keeps a client for its requests, and reports each status on stderr. Used
as a client under test by the client profile clients/httpx.yaml:

    misdirect run --client clients/httpx.yaml

Every *.test name resolves to 127.0.0.1, as curl's --resolve does; other names resolve as usual.
Needs httpx with its HTTP/2 extra (pip install 'httpx[http2]').
"""

import socket
import sys

import httpx

_getaddrinfo = socket.getaddrinfo


def _resolve_test_names(host, *args, **kwargs):
    if isinstance(host, str) and host.rstrip(".").endswith(".test"):
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _resolve_test_names

ca, protocol, *urls = sys.argv[1:]
with httpx.Client(verify=ca, http1=protocol == "h1", http2=protocol != "h1") as client:
    for url in urls:
        try:
            response = client.get(url)
            print(f"{url} {response.status_code} {response.http_version}", file=sys.stderr)
        except httpx.HTTPError as error:
            print(f"{url} {type(error).__name__}: {error}", file=sys.stderr)
