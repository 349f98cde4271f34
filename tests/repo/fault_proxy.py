#!/usr/bin/python3
"""A fault-injecting HTTP/1.1 proxy for S3 client tests.

It sits between the client and the S3 endpoint and forwards each request
byte for byte (Host header included: SigV4 signs it), with keep-alive and
chunked or Content-Length bodies both ways, one thread per connection.
Faults are armed for the next N matching requests (method and/or a substring
of the request target) and counted down as they fire.

In process:
    p = FaultProxy("http://127.0.0.1:8080", access_key=..., secret_key=...)
    p.start(); p.slowdown(2, method="GET"); ...; p.log(); p.stop()
As a process (prints its URLs, runs until SIGTERM/SIGINT):
    fault_proxy.py --upstream URL [--access-key K --secret-key S --region R]
Control over HTTP (any method; arguments in the query string; JSON answers):
    /slowdown?n=&method=&key=          /error?n=&status=&code=&message=&method=&key=
    /stall?n=&seconds=[&after_bytes=]&method=&key=    /cut?n=&after_bytes=&method=&key=
    /change_between_gets?key=&bucket=  (request body = the new object body)
    /refuse[?close_listener=1]  /allow  /clear_faults  /reset
    /counts  /count?method=GET (plain number)  /connections (accepted; plain number)
    /log  /faults  /changes  /health
"""
import argparse
import collections
import datetime
import http
import http.server
import itertools
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import urllib.parse

LogEntry = collections.namedtuple("LogEntry", "method path query range status fault")
LogEntry.__doc__ = ("One request seen: path and query as sent (percent-encoded), "
                    "range = Range header or None, status = what the client got "
                    "(None when it got no status line), fault = None, the S3 error code "
                    "of an error/slowdown fault, or stall/cut/change/refuse.")

_MESSAGES = {
    "SlowDown": "Please reduce your request rate.",
    "InternalError": "We encountered an internal error. Please try again.",
    "ServiceUnavailable": "Service is unable to handle request.",
    "RequestTimeout": "Your socket connection to the server was not read from or "
                      "written to within the timeout period.",
}
_MAX_HEAD = 64 * 1024
_CHUNK = 256 * 1024


class _Closed(Exception):
    """The peer went away (or the proxy is cutting the connection)."""


class _Reader:
    """Buffered reads from a socket that never read past what is asked for,
    so the next request on a keep-alive connection stays in the buffer."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self):
        try:
            data = self.sock.recv(_CHUNK)
        except OSError as e:
            raise _Closed(str(e))
        if not data:
            raise _Closed("eof")
        self.buf += data

    def readline(self, limit=_MAX_HEAD):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > limit:
                raise _Closed("line too long")
            self._fill()

    def read_some(self, n):
        if not self.buf:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:len(data)]
        return data

    def read_head(self):
        """Start line + header lines up to the blank line: (raw bytes, start
        line, [(lower name, value)]). Leading blank lines are skipped."""
        line = self.readline()
        while line in (b"\r\n", b"\n"):
            line = self.readline()
        raw = [line]
        headers = []
        while True:
            h = self.readline()
            raw.append(h)
            if h in (b"\r\n", b"\n"):
                break
            if sum(map(len, raw)) > _MAX_HEAD:
                raise _Closed("head too large")
            name, _, value = h.decode("latin-1").partition(":")
            headers.append((name.strip().lower(), value.strip()))
        return b"".join(raw), line.decode("latin-1").strip(), headers


class _Writer:
    """sendall() with an optional byte budget: when a send would go past it,
    on_budget() runs (raise _Closed to cut, or sleep to stall mid-body)."""

    def __init__(self, sock, budget=None, on_budget=None):
        self.sock, self.budget, self.on_budget = sock, budget, on_budget

    def send(self, data):
        if self.budget is not None and len(data) > self.budget:
            head, data = data[:self.budget], data[self.budget:]
            self._send(head)
            self.budget = None
            self.on_budget()
        elif self.budget is not None:
            self.budget -= len(data)
        self._send(data)

    def _send(self, data):
        if not data:
            return
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise _Closed(str(e))


class _Sink:
    def send(self, data):
        pass


def _header(headers, name, default=None):
    for k, v in headers:
        if k == name:
            return v
    return default


def _body_framing(headers):
    """('chunked', None) | ('length', n)."""
    te = _header(headers, "transfer-encoding", "")
    if "chunked" in te.lower():
        return "chunked", None
    return "length", int(_header(headers, "content-length", "0") or 0)


def _relay_body(reader, out, kind, n):
    """Copies one message body verbatim (chunk framing included)."""
    if kind == "length":
        while n > 0:
            data = reader.read_some(min(n, _CHUNK))
            n -= len(data)
            out.send(data)
    elif kind == "chunked":
        while True:
            line = reader.readline()
            out.send(line)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers up to the blank line
                    t = reader.readline()
                    out.send(t)
                    if t in (b"\r\n", b"\n"):
                        return
            left = size + 2  # data + CRLF
            while left > 0:
                data = reader.read_some(min(left, _CHUNK))
                left -= len(data)
                out.send(data)
    elif kind == "eof":
        while True:
            try:
                data = reader.read_some(_CHUNK)
            except _Closed:
                return
            out.send(data)


def _raise_cut():
    raise _Closed("cut")


def _close_listener(ls):
    # shutdown first: a plain close() leaves the socket listening while the
    # accept thread's select() still holds it
    _shutdown(ls)
    ls.close()


def _readable(sock):
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _rst_close(sock):
    """Close with a TCP RST, as a crashed or firewalled server would look."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def _shutdown(sock):
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Fault:
    _ids = itertools.count(1)

    def __init__(self, kind, n, method=None, key=None, **params):
        self.id = next(self._ids)
        self.kind, self.n = kind, int(n)
        self.method = method.upper() if method else None
        self.key = key
        self.params = params
        self.done = None  # change_between_gets: set once the object is replaced

    def matches(self, method, target):
        return (not self.method or method == self.method) and self.key_matches(target)

    def key_matches(self, target):
        return (not self.key or self.key in target
                or self.key in urllib.parse.unquote(target))

    def describe(self):
        d = {"id": self.id, "kind": self.kind, "n": self.n, "method": self.method, "key": self.key}
        d.update({k: v for k, v in self.params.items() if k != "new_body"})
        return d


class _Conn:
    def __init__(self, sock):
        self.csock = sock
        self.creader = _Reader(sock)
        self.up = None
        self.ureader = None
        self.idle = True


class FaultProxy:
    def __init__(self, upstream_url, access_key=None, secret_key=None, region=None,
                 host="127.0.0.1", port=0, control_port=0, upstream_timeout=300.0):
        u = urllib.parse.urlsplit(upstream_url)
        if u.scheme != "http":
            raise ValueError("only http:// upstreams are supported")
        self.upstream_url = upstream_url.rstrip("/")
        self.upstream = (u.hostname, u.port or 80)
        self.access_key = access_key or os.environ.get("AWS_ACCESS_KEY_ID")
        self.secret_key = secret_key or os.environ.get("AWS_SECRET_ACCESS_KEY")
        self.region = region or os.environ.get("AWS_REGION") or "us-east-1"
        self.host, self.port, self.control_port = host, port, control_port
        self.upstream_timeout = upstream_timeout
        self._lock = threading.Lock()
        self._faults = []
        self._counts = collections.Counter()
        self._log = []
        self._changes = []  # change_between_gets outcomes (not client requests)
        self._conns = set()
        self._threads = set()
        self._stopping = threading.Event()
        self._refusing = False
        self._listener = None
        self._control = None
        self._rid = itertools.count(1)
        self.connections_accepted = 0

    # ---- lifecycle ----

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    @property
    def control_url(self):
        return f"http://{self.host}:{self.control_port}" if self._control else None

    def _listen(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(256)
        self.port = s.getsockname()[1]
        self._listener = s

    def start(self, control=True):
        self._listen()
        self._spawn(self._accept_loop)
        if control:
            self._control = _ControlServer((self.host, self.control_port), self)
            self.control_port = self._control.server_address[1]
            self._spawn(self._control.serve_forever, 0.1)
        return self

    def stop(self):
        self._stopping.set()
        with self._lock:
            ls, self._listener = self._listener, None
            conns = list(self._conns)
            for f in self._faults:
                if f.done:
                    f.done.set()
        if ls:
            _close_listener(ls)
        if self._control:
            self._control.shutdown()
            self._control.server_close()
        for c in conns:
            _shutdown(c.csock)
            _shutdown(c.up)
        for t in list(self._threads):
            if t is not threading.current_thread():
                t.join(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _spawn(self, fn, *args):
        def run():
            try:
                fn(*args)
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())
        t = threading.Thread(target=run, daemon=True)
        with self._lock:
            self._threads.add(t)
        t.start()
        return t

    # ---- faults (public API) ----

    def _arm(self, kind, n, method=None, key=None, **params):
        f = _Fault(kind, n, method, key, **params)
        with self._lock:
            self._faults.append(f)
        return f.id

    def slowdown(self, n=1, method=None, key=None):
        """Next n matching requests get 503 SlowDown (not forwarded)."""
        return self._arm("error", n, method, key, status=503, code="SlowDown")

    def error(self, n, status, code, message=None, method=None, key=None):
        """Next n matching requests get this status and S3 error code."""
        return self._arm("error", n, method, key, status=int(status), code=code,
                         message=message)

    def stall(self, n, seconds, method=None, key=None, after_bytes=None):
        """Hold the next n matching requests this long, then forward them.
        With after_bytes: forward at once, but pause the response that long
        after that many bytes of its body (a server stalling mid-stream)."""
        return self._arm("stall", n, method, key, seconds=float(seconds),
                         after_bytes=None if after_bytes is None else int(after_bytes))

    def cut(self, n, after_bytes, method=None, key=None):
        """Forward, but close the client connection after after_bytes bytes of
        the response body (raw bytes: chunk framing counts). after_bytes=-1:
        close before any response byte (the server did process the request)."""
        return self._arm("cut", n, method, key, after_bytes=int(after_bytes))

    def change_between_gets(self, key, new_body, bucket=None):
        """After the next successful GET whose target contains key, PUT
        new_body over that object upstream (signed with boto3), so a later
        If-Match on the old ETag fails for real. Requests for the key that
        arrive meanwhile wait until the PUT is done."""
        if not (self.access_key and self.secret_key):
            raise ValueError("change_between_gets needs the proxy's access_key/secret_key")
        if isinstance(new_body, str):
            new_body = new_body.encode()
        return self._arm("change", 1, "GET", key, new_body=bytes(new_body), bucket=bucket)

    def refuse(self, close_listener=False):
        """Endpoint down: new connections are reset at once, idle keep-alive
        ones are closed, and requests on busy ones are dropped unanswered.
        close_listener=True also stops listening, so connects get ECONNREFUSED."""
        with self._lock:
            self._refusing = True
            idle = [c for c in self._conns if c.idle]
            ls = self._listener if close_listener else None
            if ls:
                self._listener = None
        if ls:
            _close_listener(ls)
        for c in idle:
            _shutdown(c.csock)

    def allow(self):
        with self._lock:
            self._refusing = False
            relisten = self._listener is None and not self._stopping.is_set()
        if relisten:
            self._listen()

    def clear_faults(self):
        with self._lock:
            for f in self._faults:
                if f.done:
                    f.done.set()
            self._faults = []

    def reset(self):
        """Clear faults, counters and the log; accept connections again."""
        self.clear_faults()
        self.allow()
        with self._lock:
            self._counts.clear()
            self._log = []
            self._changes = []
            self.connections_accepted = 0

    def faults(self):
        with self._lock:
            return [f.describe() for f in self._faults]

    def counts(self):
        """{method: requests seen}."""
        with self._lock:
            return dict(self._counts)

    def count(self, method=None):
        with self._lock:
            return self._counts[method.upper()] if method else sum(self._counts.values())

    def log(self):
        """[LogEntry] of the requests clients sent, in the order answered."""
        with self._lock:
            return list(self._log)

    def changes(self):
        """Done change_between_gets replacements: 'replaced' or 'replace_error'."""
        with self._lock:
            return list(self._changes)

    # ---- proxying ----

    def _accept_loop(self):
        while not self._stopping.is_set():
            ls = self._listener
            if ls is None:
                self._stopping.wait(0.05)
                continue
            try:
                r, _, _ = select.select([ls], [], [], 0.2)
                if not r:
                    continue
                cs, _ = ls.accept()
            except (OSError, ValueError):
                continue  # listener closed under us (refuse/stop)
            if self._refusing or self._stopping.is_set():
                _rst_close(cs)
                continue
            cs.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(cs)
            with self._lock:
                self._conns.add(conn)
                self.connections_accepted += 1
            self._spawn(self._serve, conn)

    def _take_fault(self, method, target):
        with self._lock:
            waits = [f.done for f in self._faults
                     if f.kind == "change" and f.done and f.key_matches(target)]
            for f in self._faults:
                if f.n > 0 and f.done is None and f.matches(method, target):
                    f.n -= 1
                    if f.kind == "change":
                        f.done = threading.Event()
                    elif f.n == 0:
                        self._faults.remove(f)
                    return f, waits
        return None, waits

    def _record(self, method, target, headers, status, fault):
        path, _, query = target.partition("?")
        with self._lock:
            self._log.append(LogEntry(method, path, query, _header(headers, "range"),
                                      status, fault))

    def _serve(self, conn):
        try:
            while not self._stopping.is_set():
                conn.idle = True
                try:
                    head, line, headers = conn.creader.read_head()
                except _Closed:
                    return
                conn.idle = False
                try:
                    keep = self._request(conn, head, line, headers)
                except Exception as e:  # malformed message: drop the connection
                    print(f"fault_proxy: {line!r}: {e!r}", file=sys.stderr)
                    keep = False
                if not keep:
                    return
        finally:
            with self._lock:
                self._conns.discard(conn)
            for s in (conn.csock, conn.up):
                if s is not None:
                    _shutdown(s)
                    s.close()

    def _connect_upstream(self, conn):
        if conn.up is not None:
            conn.up.close()
        conn.up = socket.create_connection(self.upstream, timeout=self.upstream_timeout)
        conn.up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.ureader = _Reader(conn.up)

    def _request(self, conn, head, line, headers):
        """Handles one request; returns whether the client connection stays open."""
        try:
            method, target, version = line.split(" ", 2)
        except ValueError:
            return False
        with self._lock:
            self._counts[method] += 1
        if self._refusing:
            self._record(method, target, headers, None, "refuse")
            _rst_close(conn.csock)
            return False
        fault, waits = self._take_fault(method, target)
        for w in waits:
            w.wait(30)
        conn_hdr = _header(headers, "connection", "").lower()
        client_close = "close" in conn_hdr or (version == "HTTP/1.0" and "keep-alive" not in conn_hdr)
        expect = "100-continue" in _header(headers, "expect", "").lower()
        kind, n = _body_framing(headers)
        has_body = kind == "chunked" or n > 0

        if fault and fault.kind == "error":
            if has_body and not expect:
                try:
                    _relay_body(conn.creader, _Sink(), kind, n)
                except _Closed:
                    return False
            close = client_close or (has_body and expect)
            self._send_error(conn, method, target, fault.params["status"],
                             fault.params["code"], fault.params.get("message"), close)
            self._record(method, target, headers, fault.params["status"], fault.params["code"])
            return not close
        if fault and fault.kind == "stall" and fault.params["after_bytes"] is None:
            if self._stopping.wait(fault.params["seconds"]):
                return False

        # forward the head; an idle upstream connection may have been closed
        # by the server meanwhile, so retry once on a fresh one
        reused = True
        for attempt in (0, 1):
            try:
                if conn.up is None or attempt or _readable(conn.up):
                    # readable while idle = the server closed it (keep-alive timeout)
                    self._connect_upstream(conn)
                    reused = False
                conn.up.sendall(head)
                break
            except OSError:
                if attempt:
                    self._send_error(conn, method, target, 502, "BadGateway",
                                     "fault_proxy: upstream unreachable", True)
                    self._record(method, target, headers, 502, "upstream-down")
                    return False

        body_done = threading.Event()
        if has_body:
            # Own thread: with Expect: 100-continue the client sends the body
            # only after the upstream's 100, which we read below.
            def send_body():
                try:
                    _relay_body(conn.creader, _Writer(conn.up), kind, n)
                    body_done.set()
                except (_Closed, ValueError):
                    _shutdown(conn.up)
            body_thread = self._spawn(send_body)
        else:
            body_done.set()
            body_thread = None

        cw = _Writer(conn.csock)
        status = None
        try:
            while True:
                rhead, rline, rheaders = conn.ureader.read_head()
                status = int(rline.split(" ", 2)[1])
                if status >= 200:
                    break
                cw.send(rhead)  # 100 Continue and other interim answers
        except (_Closed, ValueError, IndexError, OSError):
            if body_thread:
                _shutdown(conn.csock)
                body_thread.join()
            if status is None and reused and method in ("GET", "HEAD"):
                # stale keep-alive upstream: nothing was answered, send again
                try:
                    self._connect_upstream(conn)
                    conn.up.sendall(head)
                    rhead, rline, rheaders = conn.ureader.read_head()
                    status = int(rline.split(" ", 2)[1])
                except (_Closed, ValueError, IndexError, OSError):
                    status = None
            if status is None or status < 200:
                self._send_error(conn, method, target, 502, "BadGateway",
                                 "fault_proxy: upstream closed the connection", True)
                self._record(method, target, headers, 502, "upstream-closed")
                return False

        if fault and fault.kind == "change" and 200 <= status < 300:
            self._spawn(self._replace_object, fault, target)
        elif fault and fault.kind == "change":
            with self._lock:  # no success: arm again for the next GET
                waiting, fault.n, fault.done = fault.done, 1, None
            waiting.set()

        if method == "HEAD" or status in (204, 304):
            rkind, rn = "length", 0
        elif "chunked" in _header(rheaders, "transfer-encoding", "").lower():
            rkind, rn = "chunked", None
        elif _header(rheaders, "content-length") is not None:
            rkind, rn = "length", int(_header(rheaders, "content-length"))
        else:
            rkind, rn = "eof", None
        up_close = rkind == "eof" or "close" in _header(rheaders, "connection", "").lower()

        cut = fault.params["after_bytes"] if fault and fault.kind == "cut" else None
        self._record(method, target, headers, status, fault.kind if fault else None)
        if cut is not None and cut < 0:
            _rst_close(conn.csock)
            return False
        try:
            cw.send(rhead)
            if cut is not None:
                cw.budget = cut
                cw.on_budget = _raise_cut
            elif fault and fault.kind == "stall":  # a mid-body stall
                cw.budget = fault.params["after_bytes"]
                seconds = fault.params["seconds"]
                cw.on_budget = lambda: self._stopping.wait(seconds)
            _relay_body(conn.ureader, cw, rkind, rn)
            if cw.budget is not None and cw.on_budget is not _raise_cut:
                cw.on_budget()  # the body was shorter than after_bytes
        except (_Closed, ValueError):
            _shutdown(conn.csock)
            if body_thread:
                body_thread.join()
            return False
        if cut is not None:
            return False  # whole body fit in the budget: still cut
        if body_thread:
            if not body_done.wait(0.5 if expect else 5):
                # final answer came before the body was read (e.g. 403 on an
                # Expect request): the stream's position is unknown, close
                _shutdown(conn.csock)
                body_thread.join()
                return False
            body_thread.join()
        if up_close:
            conn.up.close()
            conn.up = None
        return not (client_close or up_close)

    def _send_error(self, conn, method, target, status, code, message, close):
        rid = f"faultproxy-{next(self._rid)}"
        resource = urllib.parse.unquote(target.partition("?")[0])
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{message or _MESSAGES.get(code, code)}"
                f"</Message><Resource>{_xml_escape(resource)}</Resource>"
                f"<RequestId>{rid}</RequestId></Error>").encode()
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
                f"Content-Length: {len(body)}\r\nx-amz-request-id: {rid}\r\n"
                f"Date: {date}\r\nServer: fault_proxy\r\n"
                f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n").encode()
        try:
            conn.csock.sendall(head if method == "HEAD" else head + body)
        except OSError:
            pass

    def _replace_object(self, fault, target):
        try:
            path = urllib.parse.unquote(target.partition("?")[0]).lstrip("/")
            bucket, _, key = path.partition("/")
            if fault.params.get("bucket"):
                bucket, key = fault.params["bucket"], path.partition(fault.params["bucket"] + "/")[2]
            import boto3  # only here: importing it costs a second
            from botocore.config import Config
            s3 = boto3.client("s3", endpoint_url=self.upstream_url,
                              aws_access_key_id=self.access_key,
                              aws_secret_access_key=self.secret_key, region_name=self.region,
                              config=Config(s3={"addressing_style": "path"},
                                            retries={"max_attempts": 3}))
            s3.put_object(Bucket=bucket, Key=key, Body=fault.params["new_body"])
            fault.params["replaced"] = f"{bucket}/{key}"
        except Exception as e:  # reported through faults()/the log, not raised in a thread
            fault.params["replace_error"] = repr(e)
            print(f"fault_proxy: change_between_gets PUT failed: {e!r}", file=sys.stderr)
        finally:
            with self._lock:
                if fault in self._faults:
                    self._faults.remove(fault)
                self._changes.append(fault.describe())
            fault.done.set()


def _xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _ControlServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, proxy):
        self.proxy = proxy
        super().__init__(addr, _ControlHandler)


class _ControlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _handle(self):
        p = self.server.proxy
        u = urllib.parse.urlsplit(self.path)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        m = dict(method=q.get("method") or None, key=q.get("key") or None)
        n = int(q.get("n", 1))
        op = u.path.strip("/")
        try:
            if op == "slowdown":
                out = {"id": p.slowdown(n, **m)}
            elif op == "error":
                out = {"id": p.error(n, int(q["status"]), q["code"], q.get("message"), **m)}
            elif op == "stall":
                ab = q.get("after_bytes")
                out = {"id": p.stall(n, float(q["seconds"]), after_bytes=int(ab) if ab else None, **m)}
            elif op == "cut":
                out = {"id": p.cut(n, int(q["after_bytes"]), **m)}
            elif op == "change_between_gets":
                new = body if body else q.get("body", "").encode()
                out = {"id": p.change_between_gets(q["key"], new, q.get("bucket"))}
            elif op == "refuse":
                p.refuse(q.get("close_listener", "0") not in ("", "0", "false"))
                out = {"ok": True}
            elif op in ("allow", "clear_faults", "reset"):
                getattr(p, op)()
                out = {"ok": True}
            elif op == "counts":
                out = p.counts()
            elif op == "count":
                return self._reply(200, str(p.count(q.get("method"))).encode(), "text/plain")
            elif op == "connections":
                return self._reply(200, str(p.connections_accepted).encode(), "text/plain")
            elif op == "log":
                out = [e._asdict() for e in p.log()]
            elif op == "faults":
                out = p.faults()
            elif op == "changes":
                out = p.changes()
            elif op == "health":
                out = {"ok": True, "url": p.url, "upstream": p.upstream_url}
            else:
                return self._reply(404, b'{"error": "unknown operation"}')
        except (KeyError, ValueError) as e:
            return self._reply(400, json.dumps({"error": repr(e)}).encode())
        self._reply(200, json.dumps(out).encode())

    def _reply(self, status, body, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


def main(argv=None):
    ap = argparse.ArgumentParser(description="fault-injecting HTTP/1.1 proxy for S3 tests")
    ap.add_argument("--upstream", default=os.environ.get("S3_ENDPOINT"),
                    help="S3 endpoint URL [$S3_ENDPOINT]")
    ap.add_argument("--access-key", help="for change_between_gets [$AWS_ACCESS_KEY_ID]")
    ap.add_argument("--secret-key", help="[$AWS_SECRET_ACCESS_KEY]")
    ap.add_argument("--region", help="[$AWS_REGION or us-east-1]")
    ap.add_argument("--port", type=int, default=0, help="proxy port (0: a free one)")
    ap.add_argument("--control-port", type=int, default=0)
    a = ap.parse_args(argv)
    if not a.upstream:
        ap.error("--upstream or S3_ENDPOINT is required")
    p = FaultProxy(a.upstream, a.access_key, a.secret_key, a.region,
                   port=a.port, control_port=a.control_port).start()
    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.set())
    print(f"S3_PROXY_ENDPOINT={p.url} S3_PROXY_CONTROL={p.control_url}", flush=True)
    while not stop.wait(1):
        pass
    p.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
