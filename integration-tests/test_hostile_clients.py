"""Hostile clients against a real daemon, on the API listener and the
function URL listener: slow-loris heads, many slow clients at once, huge
heads, endless and stalled bodies, half-closed connections. Each is cut off
by a limit (docs/limits.md) while normal requests keep answering, and the
daemon's descriptors return to where they were. Every wait is bounded;
timings are asserted only as generous upper bounds."""

import os
import socket
import time
import urllib.error
import urllib.request

import pytest

from conftest import ROLE, make_zip

# listen.rs: API_LIMITS.header_read_timeout, BODY_IDLE_TIMEOUT.
HEAD_TIMEOUT = 10
BODY_IDLE_TIMEOUT = 30
# Far past every limit: only a server that never cuts fails these.
BOUND = 60


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
    url = lam.create_function_url_config(FunctionName="hostile-url", AuthType="NONE")["FunctionUrl"]
    url_id = url.split("//")[1].split(".")[0]
    addr = ("127.0.0.1", daemon.url_port)
    sent, out = endless_chunked(addr, f"/{url_id}/")
    # Invoke's 6 MB, then 413.
    assert sent < 100 << 20
    if out:
        assert out.startswith(b"HTTP/1.1 413"), out[:200]


def test_stalled_body_gets_408(daemon):
    addr = ("127.0.0.1", daemon.port)
    s = connect(addr)
    s.sendall(b"POST /2015-03-31/functions HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nabc")
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
