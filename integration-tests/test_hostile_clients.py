"""Hostile clients against a real daemon, on the API listener and the
function URL listener: slow-loris heads, many slow clients at once, huge
heads, endless and stalled bodies, half-closed connections, unsigned heads of
large bodies (refused before the body) and many large unverified bodies at
once (bounded by a budget, measured as the daemon's peak memory). Each is cut off
by a limit (docs/limits.md) while normal requests keep answering, and the
daemon's descriptors return to where they were. Every wait is bounded;
timings are asserted only as generous upper bounds."""

import hashlib
import os
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY, ROLE, SECRET_KEY, make_zip, public_url, url_id_of

# listen.rs: API_LIMITS.header_read_timeout, BODY_IDLE_TIMEOUT.
HEAD_TIMEOUT = 10
BODY_IDLE_TIMEOUT = 30
# Far past every limit: only a server that never cuts fails these.
BOUND = 60
# auth.rs: UNVERIFIED_BUDGET (two 70 MB bodies), SMALL_BODY_BYTES.
UNVERIFIED_BUDGET = 2 * 70 << 20
SMALL_BODY = 64 << 10


@pytest.fixture(scope="module", params=["api", "url"])
def target(request, daemon):
    """(host, port) of one listener."""
    return ("127.0.0.1", daemon.port if request.param == "api" else daemon.url_port)


def answers(addr):
    """A normal request answers promptly (any status is an answer)."""
    url = f"http://{addr[0]}:{addr[1]}/lamb/status"
    try:
        urllib.request.urlopen(url, timeout=10)
    except urllib.error.HTTPError as e:
        return e.code
    return 200


def connect(addr):
    s = socket.create_connection(addr, timeout=BOUND)
    return s


def closed_by_server(s, bound=BOUND):
    """Reads until the server closes the connection; what it sent."""
    s.settimeout(bound)
    out = b""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            return out
        except socket.timeout:
            break
        if not chunk:
            return out
        out += chunk
    raise AssertionError(f"the server kept the connection open; it sent {out[:200]!r}")


def open_fds(daemon):
    return len(os.listdir(f"/proc/{daemon.proc.pid}/fd"))


def settle_fds(daemon, baseline):
    """Waits, bounded, for the daemon's descriptors to return to baseline."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        n = open_fds(daemon)
        if n <= baseline + 2:
            return n
        time.sleep(0.5)
    raise AssertionError(f"descriptors stayed at {open_fds(daemon)}, baseline {baseline}")


def test_slow_loris_is_dropped_while_others_answer(target):
    s = connect(target)
    s.sendall(b"GET /lamb/status HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
    start = time.monotonic()
    dropped = False
    # A byte a second, for up to 3x the head timeout.
    while time.monotonic() - start < 3 * HEAD_TIMEOUT:
        t = time.monotonic()
        answers(target)
        assert time.monotonic() - t < 5, "a normal request waited behind the slow one"
        try:
            s.sendall(b"a")
        except (BrokenPipeError, ConnectionResetError):
            dropped = True
            break
        s.settimeout(1)
        try:
            if s.recv(4096) == b"":
                dropped = True
                break
        except socket.timeout:
            pass
        except ConnectionResetError:
            dropped = True
            break
    assert dropped, "the slow-loris client was never dropped"
    assert time.monotonic() - start < 3 * HEAD_TIMEOUT


def test_many_slow_clients_hold_nothing(daemon, target):
    baseline = open_fds(daemon)
    slow = []
    try:
        for _ in range(200):
            s = connect(target)
            s.sendall(b"POST /2015-03-31/functions HTTP/1.1\r\nHost: localhost\r\n")
            slow.append(s)
        for _ in range(5):
            t = time.monotonic()
            answers(target)
            assert time.monotonic() - t < 5
        # All are cut at the head timeout.
        for s in slow:
            closed_by_server(s, bound=BOUND)
    finally:
        for s in slow:
            s.close()
    settle_fds(daemon, baseline)
    answers(target)


def test_idle_keep_alive_connection_is_closed(target):
    s = connect(target)
    closed_by_server(s, bound=3 * HEAD_TIMEOUT)


def test_huge_head_gets_431_or_a_closed_connection(target):
    s = connect(target)
    try:
        s.sendall(b"GET /lamb/status HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    out = closed_by_server(s)
    assert out == b"" or out.startswith(b"HTTP/1.1 431"), out[:200]
    # Many small headers: the same.
    s = connect(target)
    head = b"GET /lamb/status HTTP/1.1\r\nHost: localhost\r\n" + b"".join(
        b"X-H%d: v\r\n" % i for i in range(500)) + b"\r\n"
    try:
        s.sendall(head)
    except (BrokenPipeError, ConnectionResetError):
        pass
    out = closed_by_server(s)
    assert out == b"" or out.startswith(b"HTTP/1.1 431"), out[:200]
    assert answers(target)


def endless_chunked(addr, path, host="localhost"):
    """Sends a chunked body that never ends; how many bytes went before the
    server stopped it, and what it answered."""
    s = connect(addr)
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    sent = 0
    s.settimeout(BOUND)
    start = time.monotonic()
    while sent < (1 << 30) and time.monotonic() - start < BOUND:
        try:
            s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            break
        sent += 0x10000
    try:
        out = closed_by_server(s)
    except AssertionError:
        out = None
    s.close()
    assert sent < (1 << 30), "an endless body was read without limit"
    return sent, out


def test_endless_body_is_cut_at_the_limit(daemon, target):
    baseline = open_fds(daemon)
    sent, out = endless_chunked(target, "/2015-03-31/functions")
    # The API reads 70 MB at most; unknown URLs are refused unread.
    assert sent < 200 << 20
    if out:
        assert out.split(b" ")[1] in (b"413", b"404", b"403"), out[:200]
    settle_fds(daemon, baseline)
    assert answers(target)


def test_endless_body_to_a_real_function_url(daemon, lam):
    lam.create_function(
        FunctionName="hostile-url", Runtime="python3.11", Role=ROLE, Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": b"def handler(e, c):\n    return 'ok'\n"})},
    )
    url_id = url_id_of(public_url(lam, "hostile-url")["FunctionUrl"])
    addr = ("127.0.0.1", daemon.url_port)
    sent, out = endless_chunked(addr, f"/{url_id}/")
    # Invoke's 6 MB, then 413.
    assert sent < 100 << 20
    if out:
        assert out.startswith(b"HTTP/1.1 413"), out[:200]


def signed_head(addr, path, length, secret=SECRET_KEY, headers=None):
    """A POST head signed with the daemon's key id and `secret` (over an
    empty payload, so the signature fails once a body is read), declaring
    `length` bytes of body."""
    req = AWSRequest(method="POST", url=f"http://{addr[0]}:{addr[1]}{path}", headers=headers or {})
    SigV4Auth(Credentials(ACCESS_KEY, secret), "lambda", "us-east-1").add_auth(req)
    lines = [f"POST {path} HTTP/1.1", f"Host: {addr[0]}:{addr[1]}", f"Content-Length: {length}"]
    lines += [f"{k}: {v}" for k, v in req.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_stalled_body_gets_408(daemon):
    addr = ("127.0.0.1", daemon.port)
    s = connect(addr)
    # A head that passes every check made before the body, so the body is read.
    s.sendall(signed_head(addr, "/2015-03-31/functions", 100) + b"abc")
    start = time.monotonic()
    out = closed_by_server(s, bound=BODY_IDLE_TIMEOUT + BOUND)
    assert out.startswith(b"HTTP/1.1 408"), out[:200]
    assert time.monotonic() - start < BODY_IDLE_TIMEOUT + BOUND
    assert answers(addr)


def test_half_closed_connections_are_released(daemon, target):
    baseline = open_fds(daemon)
    socks = []
    try:
        for i in range(50):
            s = connect(target)
            if i % 2:
                # Mid-head.
                s.sendall(b"GET /lamb/status HTTP/1.1\r\nHost: loc")
            else:
                # Mid-body.
                s.sendall(b"POST /2015-03-31/functions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n{")
            s.shutdown(socket.SHUT_WR)
            socks.append(s)
        for s in socks:
            closed_by_server(s, bound=3 * HEAD_TIMEOUT)
    finally:
        for s in socks:
            s.close()
    settle_fds(daemon, baseline)
    assert answers(target)


def test_bad_signature_is_refused_before_the_body(daemon):
    """The head alone decides: the client sends no byte of its 60 MB body
    and still gets its 403, and the connection closes."""
    addr = ("127.0.0.1", daemon.port)
    declared = hashlib.sha256(b"the body").hexdigest()
    heads = {
        "no signature": b"POST /2015-03-31/functions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 62914560\r\n\r\n",
        "wrong secret over a declared hash": signed_head(addr, "/2015-03-31/functions", 60 << 20, secret="wrong",
                                                         headers={"X-Amz-Content-SHA256": declared}),
        "unsigned payload": signed_head(addr, "/2015-03-31/functions", 60 << 20,
                                        headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}),
    }
    for what, head in heads.items():
        s = connect(addr)
        s.sendall(head)
        out = closed_by_server(s)
        assert out.startswith(b"HTTP/1.1 403"), (what, out[:300])
        s.close()
    assert answers(addr)


def peak_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) << 10 for line in f if line.startswith("VmHWM:"))


def test_unverified_bodies_stay_within_the_budget(daemon):
    """Eight clients that know the key id but not the secret each send 64 MB
    at once and hold their last byte until all have sent the rest: the
    daemon's peak memory grows by the budget at most, not by 512 MB; those
    past the budget are refused (429) or cut off."""
    addr = ("127.0.0.1", daemon.port)
    n, size = 8, 64 << 20
    body = b"x" * size
    pid = daemon.proc.pid
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    before = peak_rss(pid)
    all_sent = threading.Barrier(n, timeout=3 * BOUND)
    answers_ = [None] * n

    def client(i):
        s = connect(addr)
        try:
            try:
                s.sendall(signed_head(addr, "/2015-03-31/functions", size))
                s.sendall(memoryview(body)[:-1])
            except (BrokenPipeError, ConnectionResetError):
                pass
            all_sent.wait()
            try:
                s.sendall(body[-1:])
            except (BrokenPipeError, ConnectionResetError):
                pass
            answers_[i] = status_of(s)
        finally:
            s.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grown = peak_rss(pid) - before
    assert grown < UNVERIFIED_BUDGET + 512 * SMALL_BODY + (64 << 20), (grown >> 20, answers_)
    assert all(a in (b"403", b"429", b"") for a in answers_), answers_
    assert b"429" in answers_ or b"" in answers_, answers_
    assert answers(addr)


def status_of(s):
    """The status of the answer on `s`, or b"" when it was cut off."""
    s.settimeout(BOUND)
    out = b""
    try:
        while len(out) < 12:
            chunk = s.recv(12 - len(out))
            if not chunk:
                break
            out += chunk
    except OSError:
        pass
    return out[9:12] if out.startswith(b"HTTP/1.1 ") and len(out) == 12 else b""
