"""A fake Lambda Runtime API for testing runtime clients on the host.

Serves `GET /2018-06-01/runtime/invocation/next` from a queue of events and
records every `/response`, `/error` and `/init/error` post, on 127.0.0.1 and
a free port, threaded, HTTP/1.1 with keep-alive (the Python client keeps one
connection, the Node client opens one per request).
"""

import http.server
import json
import queue
import threading
import time
import uuid

PREFIX = "/2018-06-01/runtime"


class Event:
    def __init__(self, payload, request_id=None, deadline_ms=None, headers=None, content_type="application/json"):
        self.body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.request_id = request_id or str(uuid.uuid4())
        self.deadline_ms = deadline_ms if deadline_ms is not None else int(time.time() * 1000) + 30_000
        self.headers = dict(headers or {})
        self.content_type = content_type


class Post:
    """One POST the client made: kind is 'response', 'error' or 'init_error';
    a streamed (chunked) one also has its `chunks` and `trailers`."""

    def __init__(self, kind, request_id, headers, body, at):
        self.kind = kind
        self.request_id = request_id
        self.headers = headers
        self.body = body
        self.at = at

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Post(%s, %s, %r)" % (self.kind, self.request_id, self.body[:300])


class FakeRuntimeApi:
    def __init__(self):
        self.events = queue.Queue()
        self.posts = []
        self.next_calls = []
        # Requests on paths the Runtime API does not have (answered 404).
        self.unknown = []
        # SnapStart: /restore/next blocks until `restored` is set.
        self.restore_calls = []
        self.restored = threading.Event()
        self.cond = threading.Condition()
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status, body=b"", headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == PREFIX + "/restore/next":
                    with api.cond:
                        api.restore_calls.append(time.time())
                        api.cond.notify_all()
                    api.restored.wait()
                    self._reply(200)
                    return
                if self.path != PREFIX + "/invocation/next":
                    api.unknown.append(("GET", self.path))
                    self._reply(404, b'{"errorType":"NotFound"}')
                    return
                with api.cond:
                    api.next_calls.append(time.time())
                    api.cond.notify_all()
                ev = api.events.get()
                if ev is None:  # shutting down: leave the client waiting
                    api.events.put(None)
                    return
                headers = {
                    "Content-Type": ev.content_type,
                    "Lambda-Runtime-Aws-Request-Id": ev.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(ev.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:000000000000:function:fn",
                }
                headers.update(ev.headers)
                self._reply(200, ev.body, headers)

            def _read_chunked(self):
                """A chunked body: its chunks, in order, and its trailers."""
                chunks, trailers = [], {}
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while True:
                    line = self.rfile.readline().strip()
                    if not line:
                        return chunks, trailers
                    name, _, value = line.decode().partition(":")
                    trailers[name.strip().lower()] = value.strip()

            def do_POST(self):
                chunks, trailers = None, {}
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    chunks, trailers = self._read_chunked()
                    body = b"".join(chunks)
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length)
                path = self.path[len(PREFIX) :] if self.path.startswith(PREFIX) else self.path
                parts = path.strip("/").split("/")
                if parts == ["init", "error"]:
                    kind, rid = "init_error", None
                elif parts == ["restore", "error"]:
                    kind, rid = "restore_error", None
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    kind, rid = parts[2], parts[1]
                else:
                    api.unknown.append(("POST", self.path))
                    self._reply(404, b'{"errorType":"NotFound"}')
                    return
                with api.cond:
                    post = Post(kind, rid, dict(self.headers), body, time.time())
                    post.chunks, post.trailers = chunks, trailers
                    api.posts.append(post)
                    api.cond.notify_all()
                self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self):
        host, port = self.server.server_address[:2]
        return "%s:%d" % (host, port)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.events.put(None)
        self.server.shutdown()
        self.server.server_close()

    def push(self, event):
        self.events.put(event)
        return event

    def wait_posts(self, n, timeout=15.0):
        """Wait until n posts arrived (or an init error); return them all."""
        deadline = time.time() + timeout
        with self.cond:
            while len(self.posts) < n and not any(p.kind == "init_error" for p in self.posts):
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError("timed out waiting for %d posts, have %r" % (n, self.posts))
                self.cond.wait(left)
            return list(self.posts)

    def wait_next_calls(self, n, timeout=15.0):
        deadline = time.time() + timeout
        with self.cond:
            while len(self.next_calls) < n:
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError("timed out waiting for %d /next calls" % n)
                self.cond.wait(left)
