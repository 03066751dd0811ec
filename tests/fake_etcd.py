#!/usr/bin/python3
"""fake_etcd.py - a hostile stand-in for etcd's JSON gateway, for the
hostile-answer tests of the etcd client (tests/test_etcd_client.c).

    /usr/bin/python3 tests/fake_etcd.py

listens on 127.0.0.1, one free port per MODE below, and prints one line
"MODE=PORT MODE=PORT ..." on stdout once every port is listening; then
serves until killed (the test stops it by its pid).  Every request (any
path, POST) to a MODE's port gets that MODE's answer:

    notjson     HTTP 200, "hello, I am not etcd"
    wrongjson   HTTP 200, a JSON array instead of an object
    badheader   HTTP 200, {"header": {"revision": "12x"}}
    badkvs      HTTP 200, a range answer whose second kv's key is a number
    badb64      HTTP 200, a range answer whose key is not base64
    http500     HTTP 500, "internal error" (text/plain)
    http404     HTTP 404, "404 page not found"
    closed      HTTP 200, Content-Length 1000, 20 bytes, then the
                connection closed
    huge        HTTP 200, a chunked body that never ends (64 KiB chunks of
                spaces after a '{') until the client hangs up
    slow        HTTP 200 headers, then one byte a second (slow loris)
    silent      accepts the connection and never answers
    errjson     HTTP 400, an etcd error object with an unknown message
    watchbad    /v3/watch: a "created" answer, then a line of garbage;
                other paths: as notjson
    watchcut    /v3/watch: a "created" answer, then half an answer, then the
                connection closed
    watchhuge   /v3/watch: a "created" answer, then a line that never ends

INVARIANTS: every connection is served by its own thread (daemon), so a
slow one never blocks the others; nothing is written to disk.
"""
import socket
import socketserver
import sys
import threading
import time

MODES = [
    "notjson", "wrongjson", "badheader", "badkvs", "badb64", "http500", "http404", "closed",
    "huge", "slow", "silent", "errjson", "watchbad", "watchcut", "watchhuge",
]

HDR = '{"header":{"cluster_id":"1","member_id":"2","revision":"7","raft_term":"2"}'
CREATED = '{"result":' + HDR + ',"created":true}}\n'


def read_request(f):
    """Read one HTTP request (headers and a Content-Length body); returns the
    path, or None at end of stream."""
    line = f.readline()
    if not line:
        return None
    parts = line.split()
    path = parts[1].decode() if len(parts) > 1 else "/"
    length = 0
    while True:
        h = f.readline()
        if not h or h in (b"\r\n", b"\n"):
            break
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    if length:
        f.read(length)
    return path


def answer(sock, status, body, ctype="application/json"):
    head = "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (
        status, ctype, len(body))
    sock.sendall(head.encode() + body.encode())


def stream_head(sock):
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")


def chunk(sock, data):
    sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        mode = self.server.mode
        sock = self.request
        f = sock.makefile("rb")
        try:
            while True:
                path = read_request(f)
                if path is None:
                    return
                if not self.serve(mode, path, sock):
                    return
        except (OSError, ValueError):
            return

    def serve(self, mode, path, sock):
        """Answer one request; False: the connection is done."""
        watch = path == "/v3/watch"
        if mode == "notjson" or (mode.startswith("watch") and not watch):
            answer(sock, "200 OK", "hello, I am not etcd", "text/plain")
        elif mode == "wrongjson":
            answer(sock, "200 OK", "[1,2,3]")
        elif mode == "badheader":
            answer(sock, "200 OK", '{"header":{"revision":"12x"}}')
        elif mode == "badkvs":
            answer(sock, "200 OK", HDR + ',"kvs":[{"key":"YQ==","mod_revision":"3"},{"key":5}]}')
        elif mode == "badb64":
            answer(sock, "200 OK", HDR + ',"kvs":[{"key":"!!!not base64!!!"}]}')
        elif mode == "http500":
            answer(sock, "500 Internal Server Error", "internal error", "text/plain")
        elif mode == "http404":
            answer(sock, "404 Not Found", "404 page not found", "text/plain")
        elif mode == "errjson":
            answer(sock, "400 Bad Request",
                   '{"error":"fake: something odd","message":"fake: something odd","code":3}')
        elif mode == "closed":
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 1000\r\n\r\n" + HDR[:20].encode())
            return False
        elif mode == "huge":
            stream_head(sock)
            chunk(sock, b"{")
            block = b" " * 65536
            while True:
                chunk(sock, block)
        elif mode == "slow":
            stream_head(sock)
            for c in HDR:
                chunk(sock, c.encode())
                time.sleep(1)
            return False
        elif mode == "silent":
            time.sleep(3600)
            return False
        elif mode == "watchbad":
            stream_head(sock)
            chunk(sock, CREATED.encode())
            chunk(sock, b"this is not JSON at all\n")
            time.sleep(3600)
            return False
        elif mode == "watchcut":
            stream_head(sock)
            chunk(sock, CREATED.encode())
            chunk(sock, b'{"result":{"header":{"revision":"8"},"events":[{"kv":')
            return False
        elif mode == "watchhuge":
            stream_head(sock)
            chunk(sock, CREATED.encode())
            chunk(sock, b'{"result":{"header":{"revision":"8"},"events":[{"kv":{"key":"')
            block = b"A" * 65536
            while True:
                chunk(sock, block)
        return True


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    servers = []
    for mode in MODES:
        s = Server(("127.0.0.1", 0), Handler)
        s.mode = mode
        servers.append(s)
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print(" ".join("%s=%d" % (s.mode, s.server_address[1]) for s in servers), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    sys.exit(main())
