"""lamb's runtime client for every python3.x runtime.

Speaks Lambda's Runtime API (http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/...)
with the standard library only, and gives the handler what Lambda's own
Python runtime gives it: the module search path, the `module.func` and
`dir/sub.module.func` handler forms, the context object, the error bodies,
unbuffered stdout and the Lambda logging format.

Started by /var/runtime/bootstrap (the shell script next to this file) as a
script, so none of this is importable by the function.
"""

import decimal
import http.client
import importlib
import json
import logging
import os
import socket
import sys
import time
import traceback
import urllib.parse

API_PREFIX = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
XRAY_CAUSE_HEADER = "Lambda-Runtime-Function-XRay-Error-Cause"
XRAY_CAUSE_MAX = 1024 * 1024
# Lambda's text-log sink joins the lines of one error record with CR, so that
# a traceback stays one log record, and indents trace lines with NO-BREAK
# SPACE.
ERROR_LINE_SEPARATOR = "\r"
ERROR_INDENT = "\u00a0"


class Fault(Exception):
    """An error of the runtime's own making, with a Lambda error type."""

    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, error_type, msg, trace=None):
        super().__init__(msg)
        self.error_type = error_type
        self.msg = msg
        self.trace = trace


# --- module search path -----------------------------------------------------


def set_sys_path(task_root, runtime_dir):
    """Lambda's order: the function, then layers, then the runtime, then the
    interpreter's own directories (and any PYTHONPATH the function set)."""
    version = "python%d.%d" % sys.version_info[:2]
    head = [
        task_root,
        "/opt/python/lib/%s/site-packages" % version,
        "/opt/python",
        runtime_dir,
    ]
    seen = set(head)
    rest = []
    for p in sys.path:
        # The script's own directory (sys.path[0]) is runtime_dir, already in head.
        if p in seen or os.path.abspath(p or ".") == os.path.abspath(runtime_dir):
            continue
        seen.add(p)
        rest.append(p)
    sys.path[:] = head + rest


# --- handler ----------------------------------------------------------------


def load_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise Fault(Fault.MALFORMED_HANDLER_NAME, "Bad handler '{}': {}".format(handler, e))
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise Fault(
                Fault.BUILT_IN_MODULE_CONFLICT,
                "Cannot use built-in module {} as a handler module".format(modname),
            )
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise Fault(Fault.IMPORT_MODULE_ERROR, "Unable to import module '{}': {}".format(modname, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise Fault(
            Fault.USER_CODE_SYNTAX_ERROR,
            "Syntax error in module '{}': {}".format(modname, e),
            trace,
        )
    try:
        return getattr(module, fname)
    except AttributeError:
        raise Fault(Fault.HANDLER_NOT_FOUND, "Handler '{}' missing on module '{}'".format(fname, modname))


# --- JSON -------------------------------------------------------------------


class Encoder(json.JSONEncoder):
    """json with Decimal support (DynamoDB's numbers), like Lambda's."""

    def default(self, o):
        if isinstance(o, decimal.Decimal):
            if not o.is_finite():
                return float(o)
            if o == o.to_integral_value() and o.adjusted() < 64:
                return int(o)
            return float(o)
        return super().default(o)


def to_json(obj):
    return Encoder().encode(obj)


def unmarshal_event(body, content_type):
    media_type = (content_type or "application/json").split(";")[0].strip().lower()
    if media_type != "application/json":
        return body
    try:
        return json.loads(body)
    except Exception as e:
        raise Fault(Fault.UNMARSHAL_ERROR, "Unable to unmarshal input: {}".format(e))


def marshal_response(response):
    if isinstance(response, bytes):
        return response, "application/unknown"
    try:
        return to_json(response).encode("utf-8"), "application/json"
    except Exception as e:
        raise Fault(Fault.MARSHAL_ERROR, "Unable to marshal response: {}".format(e))


# --- errors -----------------------------------------------------------------


def make_error(message, error_type, stack_trace, request_id=None):
    return {
        "errorMessage": message if message else "",
        "errorType": error_type if error_type else "",
        "requestId": request_id if request_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def user_frames(tb):
    """The traceback's frames, less the runtime's own leading ones."""
    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for i, frame in enumerate(frames):
        if not frame[0].endswith("/bootstrap.py"):
            return frames[i:]
    return frames


def exception_error(exc, request_id=None):
    frames = user_frames(exc.__traceback__)
    return make_error(str(exc), type(exc).__name__, traceback.format_list(frames), request_id), frames


def xray_cause(error_type, message, frames):
    return {
        "working_directory": os.getcwd(),
        "exceptions": [
            {
                "message": message,
                "type": error_type,
                "stack": [{"label": name, "path": path, "line": line} for path, line, name, _ in frames],
            }
        ],
        "paths": sorted({path for path, _, _, _ in frames}),
    }


# --- logging ----------------------------------------------------------------

_request_id = None
_tenant_id = None


class Unbuffered:
    """Flushes every write: the function log is read as it is written."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, msg):
        n = self.stream.write(msg)
        self.stream.flush()
        return n

    def writelines(self, lines):
        self.stream.writelines(lines)
        self.stream.flush()

    def __getattr__(self, attr):
        return getattr(self.stream, attr)


class LogSink:
    def log(self, msg):
        sys.stdout.write(msg)

    def log_error(self, lines):
        sys.stdout.write(ERROR_LINE_SEPARATOR.join(lines) + "\n")


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _request_id or ""
        record.tenant_id = _tenant_id
        return True


class SinkHandler(logging.Handler):
    def __init__(self, sink):
        super().__init__()
        self.log_sink = sink

    def emit(self, record):
        try:
            self.log_sink.log(self.format(record))
        except Exception:
            self.handleError(record)


_JSON_LEVELS = {"WARNING": "WARN", "CRITICAL": "FATAL"}
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "aws_request_id",
    "tenant_id",
}


class JsonFormatter(logging.Formatter):
    """AWS_LAMBDA_LOG_FORMAT=JSON: one JSON object a record."""

    def format(self, record):
        out = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + ".%03dZ" % record.msecs,
            "level": _JSON_LEVELS.get(record.levelname, record.levelname),
            "message": record.getMessage() if not isinstance(record.msg, dict) else record.msg,
            "logger": record.name,
            "requestId": getattr(record, "aws_request_id", ""),
        }
        if getattr(record, "tenant_id", None):
            out["tenantId"] = record.tenant_id
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            out["errorType"] = type(exc).__name__
            out["errorMessage"] = str(exc)
            out["stackTrace"] = traceback.format_tb(exc.__traceback__)
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                out[key] = value
        return json.dumps(out, default=str) + "\n"


def setup_logging(sink):
    logging.Formatter.converter = time.gmtime
    handler = SinkHandler(sink)
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    level = {"WARN": "WARNING", "FATAL": "CRITICAL", "TRACE": "DEBUG"}.get(level, level)
    if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        root.setLevel(level)
    root.addHandler(handler)


def log_error(error, sink):
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON":
        record = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "level": "ERROR",
            **error,
        }
        sink.log_error([to_json(record)])
        return
    head = "[ERROR]"
    if error.get("errorType"):
        head += " " + error["errorType"]
    if error.get("errorMessage"):
        if error.get("errorType"):
            head += ":"
        head += " " + error["errorMessage"]
    lines = [head]
    stack = error.get("stackTrace")
    if stack is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack:
            if element == "":
                lines.append("")
                continue
            for line in element.splitlines():
                stripped = line.lstrip(" ")
                lines.append(ERROR_INDENT * (len(line) - len(stripped)) + stripped)
    sink.log_error(lines)


# --- context ----------------------------------------------------------------


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id={},cognito_identity_pool_id={}])".format(
            self.cognito_identity_id, self.cognito_identity_pool_id
        )


class Client:
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"]

    def __repr__(self):
        return "Client([{}])".format(",".join("{}={}".format(k, getattr(self, k)) for k in self.__slots__))


class ClientContext:
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return "ClientContext([custom={},env={},client={}])".format(self.custom, self.env, self.client)


def _obj_from_dict(cls, d):
    if d is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, d.get(field) if isinstance(d, dict) else None)
    return obj


class LambdaContext:
    def __init__(self, request_id, client_context, cognito_identity, deadline_ms, invoked_function_arn, tenant_id=None):
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self.client_context = _obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj_from_dict(Client, self.client_context.client)
        self.identity = _obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, msg):
        for handler in logging.getLogger().handlers:
            if hasattr(handler, "log_sink"):
                handler.log_sink.log(str(msg))
                return
        sys.stdout.write(str(msg))

    def __repr__(self):
        fields = [
            "aws_request_id",
            "log_group_name",
            "log_stream_name",
            "function_name",
            "memory_limit_in_mb",
            "function_version",
            "invoked_function_arn",
            "client_context",
            "identity",
            "tenant_id",
        ]
        return "LambdaContext([{}])".format(",".join("{}={}".format(f, getattr(self, f)) for f in fields))


def parse_json_header(value, name):
    try:
        return json.loads(value)
    except Exception as e:
        raise Fault(Fault.CONTEXT_UNMARSHAL_ERROR, "Unable to parse {} JSON: {}".format(name, e))


# --- Runtime API client -----------------------------------------------------


class Invocation:
    def __init__(self, headers, body):
        self.request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        if not self.request_id:
            raise RuntimeError("the Runtime API sent an event without Lambda-Runtime-Aws-Request-Id")
        try:
            self.deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms") or 0)
        except ValueError:
            self.deadline_ms = 0
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn")
        self.trace_id = headers.get("Lambda-Runtime-Trace-Id")
        self.client_context = headers.get("Lambda-Runtime-Client-Context")
        self.cognito_identity = headers.get("Lambda-Runtime-Cognito-Identity")
        self.tenant_id = headers.get("Lambda-Runtime-Aws-Tenant-Id")
        self.content_type = headers.get("Content-Type")
        self.body = body


class RuntimeConnection(http.client.HTTPConnection):
    """Connects to the Runtime API's address as it is given (init's is
    numeric) without `socket.create_connection`, whose getaddrinfo encodes
    the host with the idna codec: its first call imports encodings.idna,
    stringprep and unicodedata, milliseconds of the first /next of every
    cold start, and modules the function never asked for."""

    def connect(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.connect((self.host, self.port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class RuntimeClient:
    """One kept-alive HTTP/1.1 connection, reopened when the server drops it."""

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            host, port = address, "80"
        self.host = host.strip("[]")
        self.port = int(port)
        self.conn = None

    def _request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = RuntimeConnection(self.host, self.port)
            try:
                self.conn.request(method, API_PREFIX + path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                continue
            if resp.will_close:
                self.conn.close()
                self.conn = None
            return resp, data
        raise AssertionError("unreachable")

    def _post(self, path, body, headers):
        resp, data = self._request("POST", path, body, headers)
        if resp.status >= 500:
            # A container error: the runtime is expected to exit.
            sys.stderr.write("lamb runtime: POST {} answered {}: {!r}\n".format(path, resp.status, data[:1000]))
            sys.exit(1)
        if resp.status >= 300:
            sys.stderr.write("lamb runtime: POST {} answered {}: {!r}\n".format(path, resp.status, data[:1000]))
        return resp

    def next(self):
        resp, data = self._request("GET", "/invocation/next")
        if resp.status != 200:
            raise RuntimeError("GET /invocation/next answered {}: {!r}".format(resp.status, data[:1000]))
        return Invocation(resp.headers, data)

    def post_response(self, request_id, body, content_type):
        path = "/invocation/{}/response".format(urllib.parse.quote(request_id, safe=""))
        self._post(path, body, {"Content-Type": content_type})

    def post_error(self, request_id, error, xray=None):
        path = "/invocation/{}/error".format(urllib.parse.quote(request_id, safe=""))
        headers = {"Content-Type": "application/json"}
        if xray is not None:
            cause = to_json(xray)
            if len(cause) < XRAY_CAUSE_MAX:
                headers[XRAY_CAUSE_HEADER] = cause
        self._post(path, to_json(error).encode("utf-8"), headers)

    def restore_next(self):
        """SnapStart: blocks until the sandbox is restored for an invocation."""
        resp, data = self._request("GET", "/restore/next")
        if resp.status != 200:
            raise RuntimeError("GET /restore/next answered {}: {!r}".format(resp.status, data[:1000]))

    def post_restore_error(self, error):
        headers = {"Content-Type": "application/json", ERROR_TYPE_HEADER: error.get("errorType") or "Runtime.Unknown"}
        self._post("/restore/error", to_json(error).encode("utf-8"), headers)

    def post_init_error(self, error):
        headers = {"Content-Type": "application/json", ERROR_TYPE_HEADER: error.get("errorType") or "Runtime.Unknown"}
        self._post("/init/error", to_json(error).encode("utf-8"), headers)


# --- SnapStart ----------------------------------------------------------------


def snapstart(client, sink):
    """With AWS_LAMBDA_INITIALIZATION_TYPE=snap-start, as Lambda's runtime
    does: the before-snapshot hooks (last registered first), then
    /restore/next, which answers when the sandbox is restored for an
    invocation, then the after-restore hooks (in registration order) and a
    fresh seed for `random`, so restored sandboxes never share a sequence.
    A failing hook is an init error before the snapshot and a restore error
    after it; either ends the runtime."""
    import snapshot_restore_py as hooks

    try:
        before = hooks.get_before_snapshot()
        while before:
            func, args, kwargs = before.pop()
            func(*args, **kwargs)
    except Exception as e:
        error, _ = exception_error(e)
        error["errorType"] = "Runtime.BeforeSnapshotError"
        log_error(error, sink)
        client.post_init_error(error)
        sys.exit(1)
    client.restore_next()
    if "random" in sys.modules:
        sys.modules["random"].seed()
    try:
        for func, args, kwargs in hooks.get_after_restore():
            func(*args, **kwargs)
    except Exception as e:
        error, _ = exception_error(e)
        error["errorType"] = "Runtime.AfterRestoreError"
        log_error(error, sink)
        client.post_restore_error(error)
        sys.exit(1)


# --- the loop ---------------------------------------------------------------


def handle(client, request_handler, inv, sink):
    error = None
    xray = None
    try:
        client_context = parse_json_header(inv.client_context, "Client Context") if inv.client_context else None
        identity = parse_json_header(inv.cognito_identity, "Cognito Identity") if inv.cognito_identity else None
        context = LambdaContext(
            inv.request_id, client_context, identity, inv.deadline_ms, inv.invoked_function_arn, inv.tenant_id
        )
        event = unmarshal_event(inv.body, inv.content_type)
        response = request_handler(event, context)
        body, content_type = marshal_response(response)
    except Fault as e:
        error = make_error(e.msg, e.error_type, e.trace, inv.request_id)
        xray = xray_cause("LambdaValidationError", e.msg, [])
    except Exception as e:
        error, frames = exception_error(e, inv.request_id)
        xray = xray_cause(type(e).__name__, str(e), frames)
    if error is not None:
        log_error(error, sink)
        client.post_error(inv.request_id, error, xray)
    else:
        client.post_response(inv.request_id, body, content_type)


def await_assignment(fd):
    """A pre-initialised sandbox (lamb's docs/prewarm.md): everything above
    is imported; say so on descriptor `fd` and wait for the function's
    environment (`KEY=VALUE` entries ended by NUL, then end of file), which
    replaces this process's whole environment (the C library's too, for
    child processes). What the start itself added (the shell's PWD, Python's
    LC_CTYPE coercion) stays, as it would have been added to the function's
    environment: every variable the start reads is the same in both. The
    code is at /var/task by then, over the directory this process started
    in: enter it again."""
    os.write(fd, b"ready\n")
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    assigned = {}
    for entry in b"".join(chunks).split(b"\0"):
        key, sep, value = entry.partition(b"=")
        if sep and key:
            assigned[os.fsdecode(key)] = os.fsdecode(value)
    added = {k: v for k, v in os.environ.items() if k not in assigned and k != "LAMB_PREWARM_FD"}
    os.environ.clear()
    os.environ.update(assigned)
    os.environ.update(added)
    os.chdir("/var/task")


def main():
    global _request_id, _tenant_id
    if "LAMB_PREWARM_FD" in os.environ:
        await_assignment(int(os.environ["LAMB_PREWARM_FD"]))
    sys.stdout = Unbuffered(sys.stdout)
    sys.stderr = Unbuffered(sys.stderr)
    runtime_dir = os.environ.get("LAMBDA_RUNTIME_DIR") or os.path.dirname(os.path.abspath(__file__))
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or "/var/task"
    set_sys_path(task_root, runtime_dir)
    handler_name = os.environ.get("_HANDLER") or (sys.argv[1] if len(sys.argv) > 1 else "")
    client = RuntimeClient(os.environ.get("AWS_LAMBDA_RUNTIME_API") or "127.0.0.1:9001")
    sink = LogSink()

    error = None
    try:
        setup_logging(sink)
        request_handler = load_handler(handler_name)
    except Fault as e:
        error = make_error(e.msg, e.error_type, e.trace)
    except Exception as e:
        error, _ = exception_error(e)
    if error is not None:
        log_error(error, sink)
        client.post_init_error(error)
        sys.exit(1)
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start":
        snapstart(client, sink)

    while True:
        inv = client.next()
        _request_id = inv.request_id
        _tenant_id = inv.tenant_id
        if inv.trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = inv.trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        handle(client, request_handler, inv, sink)


if __name__ == "__main__":
    main()
