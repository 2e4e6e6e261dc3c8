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


class Capture(io.TextIOBase):
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
        return len(text)

    def value(self):
        return "".join(self.parts)


capture = Capture()
sys.stdout = capture
sys.stderr = capture
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
            reply({"type": "result", "id": message.get("id"), "ok": False, "error": error,
                   "logs": capture.value(), "logsTruncated": capture.truncated})
            return
        payload = json.loads(dumped)
        reply({"type": "result", "id": message.get("id"), "ok": True, "result": payload,
               "logs": capture.value(), "logsTruncated": capture.truncated})
    except BaseException as err:  # a handler's SystemExit is its failure, not the bootstrap's
        reply({"type": "result", "id": message.get("id"), "ok": False, "error": describe(err),
               "logs": capture.value(), "logsTruncated": capture.truncated})


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
