# Runs inside a python3 function container as its only process. Same protocol as the node
# bootstrap: JSON lines in on stdin; replies on stdout behind the frame mark; what the
# handler prints is captured per invocation as its log.
import base64
import importlib
import io
import json
import os
import sys
import time
import traceback

MARK = "\x1eDH "
TASK_DIR = "/tmp/task"
LOG_CAP = int(os.environ.get("DOCKHAND_LOG_CAP", "262144"))
# The host sends its limit with each call (maxResultBytes); this is for a host that does not.
MAX_RESULT_BYTES = 6 * 1024 * 1024
# An error's text is cut here, so that a reply always fits the host's frame cap (result cap + 4 MiB).
ERROR_CAP = 65536
_out = os.dup(1)
_stdin = sys.stdin.buffer


def reply(message):
    data = (MARK + json.dumps(message) + "\n").encode("utf-8")
    view = memoryview(data)
    while view:
        written = os.write(_out, view)
        view = view[written:]


class Capture:
    """The call's log, both streams together, capped at LOG_CAP characters."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.parts = []
        self.size = 0
        self.truncated = False

    def write(self, text):
        if self.size + len(text) > LOG_CAP:
            self.truncated = True
            room = LOG_CAP - self.size
            if room > 0:
                self.parts.append(text[:room])
            self.size = LOG_CAP
        else:
            self.parts.append(text)
            self.size += len(text)

    def value(self):
        return "".join(self.parts)


# Live logs: while a call runs, what it prints also goes to the host as it is written, in
# `log` frames, up to the host's budget for the call (`liveLogChars`; absent: not streamed).
# One character past the budget is sent so the host knows the output was cut and says so.
# A line is sent when it is complete (or at LIVE_FRAME_CHARS, or on flush()): a handler is
# synchronous here, with no event loop to batch on, and print() writes a line in two calls.
LIVE_FRAME_CHARS = 16384


class Live:
    def __init__(self):
        self.left = 0
        self.stream = "stdout"
        self.parts = []
        self.size = 0

    def start(self, budget):
        self.left = budget + 1 if budget > 0 else 0
        self.parts = []
        self.size = 0

    def write(self, stream, text):
        if self.left <= 0 or not text:
            return
        if stream != self.stream:
            self.flush()
            self.stream = stream
        piece = text[: self.left]
        self.left -= len(piece)
        self.parts.append(piece)
        self.size += len(piece)
        if "\n" in piece or self.size >= LIVE_FRAME_CHARS:
            self.flush()

    def flush(self):
        if not self.parts:
            return
        text = "".join(self.parts)
        self.parts = []
        self.size = 0
        try:
            for i in range(0, len(text), LIVE_FRAME_CHARS):
                reply({"type": "log", "stream": self.stream, "text": text[i:i + LIVE_FRAME_CHARS]})
        except OSError:
            # Printing never raises into the handler; the call's reply will meet the same pipe.
            self.left = 0

    def end(self):
        self.flush()
        self.left = 0


class Tee(io.TextIOBase):
    """sys.stdout or sys.stderr: into the call's log, and live when someone listens."""

    def __init__(self, name):
        self.name = name

    def write(self, text):
        capture.write(text)
        live.write(self.name, text)
        return len(text)

    def flush(self):
        live.flush()


capture = Capture()
live = Live()
sys.stdout = Tee("stdout")
sys.stderr = Tee("stderr")
# Anything writing to fd 1 directly (a child process) goes to stderr, keeping stdout for replies.
os.dup2(2, 1)
handler = None


def cut(text):
    return text[:ERROR_CAP] + " [cut]" if len(text) > ERROR_CAP else text


def describe(err):
    return {
        "errorType": type(err).__name__,
        "errorMessage": cut(str(err)),
        "stack": cut("".join(traceback.format_exception(type(err), err, err.__traceback__))),
    }


def result_bytes(dumped):
    # As the host counts it: compact JSON in UTF-8 (a lone surrogate kept, not refused).
    return len(dumped.encode("utf-8", "surrogatepass"))


class Context:
    def __init__(self, ctx):
        self.aws_request_id = ctx.get("requestId")
        self.request_id = ctx.get("requestId")
        self.function_name = ctx.get("functionName")
        self.memory_limit_in_mb = ctx.get("memoryLimitInMB")
        self._deadline = ctx.get("deadline") or 0

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline - time.time() * 1000))


def load(message):
    global handler
    root = os.path.realpath(TASK_DIR)
    os.makedirs(root, exist_ok=True)
    for name, content in message["files"].items():
        target = os.path.realpath(os.path.join(root, name))
        if not target.startswith(root + "/"):
            raise ValueError("Refusing file outside the task directory: " + name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(base64.b64decode(content))
    os.environ.update(message.get("env") or {})
    os.chdir(root)
    sys.path.insert(0, root)
    module_name, _, function_name = message["handler"].rpartition(".")
    module = importlib.import_module(module_name.replace("/", "."))
    fn = getattr(module, function_name, None)
    if not callable(fn):
        raise AttributeError(module_name + " has no function named " + function_name)
    handler = fn


def invoke(message):
    capture.reset()
    budget = int(message.get("liveLogChars") or 0)
    live.start(budget)
    # Tells the host its logs were streamed, so it does not send them again from the reply.
    streamed = budget > 0
    try:
        result = handler(message.get("event"), Context(message.get("context") or {}))
        dumped = json.dumps(result, separators=(",", ":"), ensure_ascii=False)
        # Measured here, before writing, so an oversized result never crosses the pipe.
        size = result_bytes(dumped)
        limit = int(message.get("maxResultBytes") or MAX_RESULT_BYTES)
        if size > limit:
            error = {
                "errorType": "ResultTooLarge",
                "errorMessage": "The result is %d bytes, over the %d-byte limit for a function result; "
                "put large data in S3/MinIO and return its key instead." % (size, limit),
            }
            live.end()
            reply({"type": "result", "id": message.get("id"), "ok": False, "error": error,
                   "logs": capture.value(), "logsTruncated": capture.truncated, "streamed": streamed})
            return
        payload = json.loads(dumped)
        live.end()
        reply({"type": "result", "id": message.get("id"), "ok": True, "result": payload,
               "logs": capture.value(), "logsTruncated": capture.truncated, "streamed": streamed})
    except BaseException as err:  # a handler's SystemExit is its failure, not the bootstrap's
        live.end()
        reply({"type": "result", "id": message.get("id"), "ok": False, "error": describe(err),
               "logs": capture.value(), "logsTruncated": capture.truncated, "streamed": streamed})


reply({"type": "ready", "runtime": "python3", "version": sys.version.split()[0]})
for raw in _stdin:
    try:
        message = json.loads(raw)
    except ValueError:
        reply({"type": "error", "error": {"errorType": "ProtocolError", "errorMessage": "Invalid JSON frame."}})
        continue
    kind = message.get("type")
    if kind == "load":
        try:
            load(message)
            reply({"type": "loaded", "id": message.get("id"), "ok": True})
        except BaseException as err:
            reply({"type": "loaded", "id": message.get("id"), "ok": False, "error": describe(err)})
    elif kind == "invoke":
        invoke(message)
    elif kind == "ping":
        reply({"type": "pong", "id": message.get("id")})
