# Runs inside a python3 function container as its only process. Same protocol as the node
# bootstrap: JSON lines in on stdin; replies on stdout behind the frame mark; what the
# handler prints is captured per invocation as its log.
import base64
import importlib
import io
import json
import os
import sys
import threading
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
# Replies come from the main thread and the live-log flusher: one line at a time.
_reply_lock = threading.Lock()


def reply(message):
    data = (MARK + json.dumps(message) + "\n").encode("utf-8")
    view = memoryview(data)
    with _reply_lock:
        while view:
            written = os.write(_out, view)
            view = view[written:]


class Capture:
    """What the call printed, both streams in order. The reply's logs are its first LOG_CAP
    characters; the live log reads it too (Live), so a print costs no more than before."""

    def __init__(self):
        self.reset(LOG_CAP)

    def reset(self, keep):
        self.parts = []
        # (index in parts, stream) wherever the stream changes.
        self.marks = []
        self.last = None
        self.size = 0
        self.keep = keep
        self.cut = False

    def write(self, text, stream):
        if stream != self.last:
            self.marks.append((len(self.parts), stream))
            self.last = stream
        if self.size + len(text) > self.keep:
            self.cut = True
            room = self.keep - self.size
            if room > 0:
                self.parts.append(text[:room])
            self.size = self.keep
        else:
            self.parts.append(text)
            self.size += len(text)

    def value(self):
        return "".join(self.parts)[:LOG_CAP]

    @property
    def truncated(self):
        return self.cut or self.size > LOG_CAP


# Live logs: while a call runs, what it prints also goes to the host as it is written, in
# `log` frames, up to the host's budget for the call (`liveLogChars`; absent: not streamed).
# One character past the budget is sent so the host knows the output was cut and says so.
# A handler here is synchronous, with no event loop to batch on: a flusher thread sends
# what the capture gained every LIVE_DELAY while a call runs (and at flush() and the
# call's end), so the handler's prints do no extra work at all.
LIVE_FRAME_CHARS = 16384
LIVE_DELAY = 0.02


class Live:
    def __init__(self):
        self.lock = threading.Lock()
        self.running = threading.Event()
        self.left = 0
        self.sent = 0
        self.mark = 0
        self.thread = None

    def start(self, budget):
        with self.lock:
            self.left = budget + 1 if budget > 0 else 0
            self.sent = 0
            self.mark = 0
            capture.reset(max(LOG_CAP, self.left))
        if budget > 0:
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="dockhand-live-log", daemon=True)
                self.thread.start()
            self.running.set()

    def flush(self):
        with self.lock:
            self._flush()

    def end(self):
        with self.lock:
            self._flush()
            self.left = 0
            self.running.clear()

    def _run(self):
        while True:
            self.running.wait()
            time.sleep(LIVE_DELAY)
            self.flush()

    def _flush(self):
        # The handler appends to parts and marks meanwhile (appends only, atomic under the
        # GIL): what is sent is what was there when counted.
        parts = capture.parts
        marks = capture.marks
        end = len(parts)
        try:
            while self.sent < end and self.left > 0:
                while self.mark + 1 < len(marks) and marks[self.mark + 1][0] <= self.sent:
                    self.mark += 1
                stream = marks[self.mark][1] if marks else "stdout"
                upto = marks[self.mark + 1][0] if self.mark + 1 < len(marks) else end
                upto = min(max(upto, self.sent + 1), end)
                text = "".join(parts[self.sent:upto])[: self.left]
                self.left -= len(text)
                self.sent = upto
                for i in range(0, len(text), LIVE_FRAME_CHARS):
                    reply({"type": "log", "stream": stream, "text": text[i:i + LIVE_FRAME_CHARS]})
        except OSError:
            # Printing never raises into the handler; the call's reply will meet the same pipe.
            self.left = 0


class Tee(io.TextIOBase):
    """sys.stdout or sys.stderr: into the call's log, which the live log reads too."""

    def __init__(self, name):
        self.name = name

    def write(self, text):
        capture.write(text, self.name)
        return len(text)

    def flush(self):
        live.flush()


capture = Capture()
live = Live()


def _in_forked_child():
    # A child of the handler (multiprocessing, os.fork) must not stream: its copy of the capture
    # would be sent again, and a lock the flusher held at the fork would never be released.
    global _reply_lock
    _reply_lock = threading.Lock()
    live.lock = threading.Lock()
    live.running = threading.Event()
    live.left = 0
    live.thread = None


os.register_at_fork(after_in_child=_in_forked_child)
sys.stdout = Tee("stdout")
sys.stderr = Tee("stderr")
# Anything writing to fd 1 directly (a child process) goes to stderr, keeping stdout for replies.
os.dup2(2, 1)
handler = None


def cut(text):
    return text[:ERROR_CAP] + " [cut]" if len(text) > ERROR_CAP else text


def describe(err):
    # `stackTrace` is Lambda's form (one string per frame, as traceback.format_list gives it,
    # at most ERROR_CAP characters in all); `stack` is Dockhand's (one string).
    # Lambda's runtime leaves its own frames out: the trace starts in the function's code.
    summary = traceback.extract_tb(err.__traceback__)
    while summary and summary[0].filename == __file__:
        summary.pop(0)
    frames = []
    room = ERROR_CAP
    for line in traceback.format_list(summary):
        if len(line) > room:
            break
        frames.append(line)
        room -= len(line)
    return {
        "errorType": type(err).__name__,
        "errorMessage": cut(str(err)),
        "stack": cut("".join(traceback.format_exception(type(err), err, err.__traceback__))),
        "stackTrace": frames,
    }


def result_bytes(dumped):
    # As the host counts it: compact JSON in UTF-8 (a lone surrogate kept, not refused).
    return len(dumped.encode("utf-8", "surrogatepass"))


class Context:
    """Lambda's Python context. memory_limit_in_mb is a string, as Lambda's own runtime reads it
    from AWS_LAMBDA_FUNCTION_MEMORY_SIZE; request_id is Dockhand's older name."""

    def __init__(self, ctx):
        env = os.environ
        self.aws_request_id = ctx.get("requestId")
        self.request_id = ctx.get("requestId")
        self.function_name = ctx.get("functionName") or env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = ctx.get("invokedFunctionArn")
        memory = ctx.get("memoryLimitInMB")
        self.memory_limit_in_mb = str(memory) if memory is not None else env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None
        self._deadline = ctx.get("deadline") or 0

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline - time.time() * 1000))


def log_stream_name():
    """Lambda's name for one container's log stream: `2024/05/01/[$LATEST]` and 32 hex digits."""
    version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION") or "$LATEST"
    return time.strftime("%Y/%m/%d", time.gmtime()) + "/[" + version + "]" + os.urandom(16).hex()


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
    # What only this process knows, unless the function set it itself.
    os.environ.setdefault("AWS_EXECUTION_ENV", "AWS_Lambda_python%d.%d" % sys.version_info[:2])
    os.environ.setdefault("AWS_LAMBDA_LOG_STREAM_NAME", log_stream_name())
    os.environ.setdefault("LAMBDA_TASK_ROOT", TASK_DIR)
    os.chdir(root)
    sys.path.insert(0, root)
    module_name, _, function_name = message["handler"].rpartition(".")
    module = importlib.import_module(module_name.replace("/", "."))
    fn = getattr(module, function_name, None)
    if not callable(fn):
        raise AttributeError(module_name + " has no function named " + function_name)
    handler = fn


def invoke(message):
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
