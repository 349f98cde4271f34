"""Proves the S3 test fixture (swift_s3.py), the fault proxy (fault_proxy.py)
and the ctest wrapper (with_s3.py) with boto3, before any C++ client relies
on them.

    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/repo/test_fixture.py

With STRIA_TEST_S3_ENDPOINT (+ AWS_* credentials) set, the tests run against
that endpoint and the Swift-only ones are skipped.
"""
import concurrent.futures
import hashlib
import http.client
import http.server
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

import boto3
import botocore
import pytest
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fault_proxy import FaultProxy  # noqa: E402
from swift_s3 import SwiftS3, pid_alive, s3_endpoint  # noqa: E402

PY = "/usr/bin/python3"
EXTERNAL = bool(os.environ.get("STRIA_TEST_S3_ENDPOINT"))
swift_only = pytest.mark.skipif(EXTERNAL, reason="needs the local Swift fixture")


def client(ep, url=None, secret=None, attempts=1, read_timeout=15, connect_timeout=5, pool=10):
    """boto3 S3 client, path style, SigV4; attempts=1 means retries off."""
    return boto3.client(
        "s3", endpoint_url=url or ep.endpoint, region_name=ep.region,
        aws_access_key_id=ep.access_key, aws_secret_access_key=secret or ep.secret_key,
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                      retries={"mode": "standard", "total_max_attempts": attempts},
                      read_timeout=read_timeout, connect_timeout=connect_timeout,
                      max_pool_connections=pool))


def err(e):
    return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]


def md5_etag(data):
    return '"%s"' % hashlib.md5(data).hexdigest()


@pytest.fixture(scope="session")
def ep():
    base = tempfile.mkdtemp(prefix="stria-s3-test-")
    e = s3_endpoint(base, die_with_parent=True)
    e.start()
    yield e
    e.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def s3(ep):
    return client(ep)


@pytest.fixture(scope="session")
def bucket(ep, s3):
    name = "stria-fixture-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    yield name
    if EXTERNAL:  # be tidy on someone else's endpoint
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        s3.delete_bucket(Bucket=name)


@pytest.fixture(scope="session")
def _proxy(ep):
    p = FaultProxy(ep.endpoint, ep.access_key, ep.secret_key, ep.region).start()
    yield p
    p.stop()


@pytest.fixture
def proxy(_proxy):
    _proxy.reset()
    yield _proxy
    _proxy.reset()


@pytest.fixture
def ps3(ep, proxy):
    """Client through the proxy, retries off."""
    return client(ep, url=proxy.url)


# ---- the endpoint ----

@swift_only
def test_swift_started_fast_on_free_ports(ep):
    assert isinstance(ep, SwiftS3)
    print(f"swift fixture startup: {ep.startup_s:.2f}s")
    assert ep.startup_s < 30
    assert len(set(ep.ports.values())) == 5
    assert all(pid_alive(p) for p in ep.pids().values())
    assert ep.endpoint == f"http://127.0.0.1:{ep.ports['proxy']}"
    assert (ep.access_key, ep.secret_key, ep.region) == ("test:tester", "testing", "us-east-1")


def test_put_get_head(s3, bucket):
    data = os.urandom(1 << 20)
    put = s3.put_object(Bucket=bucket, Key="a/one.bin", Body=data)
    assert put["ETag"] == md5_etag(data)
    got = s3.get_object(Bucket=bucket, Key="a/one.bin")
    assert got["Body"].read() == data
    head = s3.head_object(Bucket=bucket, Key="a/one.bin")
    assert head["ETag"] == md5_etag(data) and head["ContentLength"] == len(data)
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        s3.get_object(Bucket=bucket, Key="a/missing")
    assert err(ei.value) == ("NoSuchKey", 404)


def test_ranged_get(s3, bucket):
    data = os.urandom(100_000)
    s3.put_object(Bucket=bucket, Key="range.bin", Body=data)
    r = s3.get_object(Bucket=bucket, Key="range.bin", Range="bytes=1000-5095")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert r["ContentRange"] == "bytes 1000-5095/100000"
    assert r["Body"].read() == data[1000:5096]
    assert s3.get_object(Bucket=bucket, Key="range.bin", Range="bytes=-100")["Body"].read() == data[-100:]
    assert s3.get_object(Bucket=bucket, Key="range.bin", Range="bytes=99990-")["Body"].read() == data[99990:]


def test_wrong_secret_is_signature_does_not_match(ep, bucket):
    bad = client(ep, secret="WRONG-SECRET")
    for call in (lambda: bad.list_objects_v2(Bucket=bucket),
                 lambda: bad.get_object(Bucket=bucket, Key="range.bin"),
                 lambda: bad.put_object(Bucket=bucket, Key="evil", Body=b"x")):
        with pytest.raises(botocore.exceptions.ClientError) as ei:
            call()
        assert err(ei.value) == ("SignatureDoesNotMatch", 403)


def test_list_over_1000_keys_paginates(ep, s3, bucket, proxy, ps3):
    n = 1010
    keys = ["many/k%05d" % i for i in range(n)]
    put_client = client(ep, pool=16)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda k: put_client.put_object(Bucket=bucket, Key=k, Body=b"x"), keys))
    print(f"put {n} keys in {time.monotonic() - t0:.1f}s")
    # through the proxy, so the log shows the two pages
    first = ps3.list_objects_v2(Bucket=bucket, Prefix="many/")
    assert first["KeyCount"] == 1000 and first["IsTruncated"]
    second = ps3.list_objects_v2(Bucket=bucket, Prefix="many/",
                                 ContinuationToken=first["NextContinuationToken"])
    assert second["KeyCount"] == 10 and not second["IsTruncated"]
    got = [o["Key"] for p in (first, second) for o in p["Contents"]]
    assert got == keys
    log = proxy.log()
    assert [(e.method, e.status) for e in log] == [("GET", 200), ("GET", 200)]
    assert "continuation-token=" in log[1].query and "list-type=2" in log[0].query
    # v1 listing pages by marker the same way
    v1 = s3.list_objects(Bucket=bucket, Prefix="many/")
    assert len(v1["Contents"]) == 1000 and v1["IsTruncated"]


# ---- the fault proxy against the real endpoint ----

def test_proxy_forwards_unchanged(ep, s3, bucket, proxy, ps3):
    data = os.urandom(3 << 20)
    # boto3 sends Expect: 100-continue with PUT bodies: the proxy relays the 100
    assert ps3.put_object(Bucket=bucket, Key="via/proxy.bin",
                          Body=io.BytesIO(data))["ETag"] == md5_etag(data)
    assert ps3.get_object(Bucket=bucket, Key="via/proxy.bin")["Body"].read() == data
    assert s3.get_object(Bucket=bucket, Key="via/proxy.bin")["Body"].read() == data
    r = ps3.get_object(Bucket=bucket, Key="via/proxy.bin", Range="bytes=10-19")
    assert r["Body"].read() == data[10:20]
    assert proxy.counts() == {"PUT": 1, "GET": 2}
    assert proxy.log()[-1] == ("GET", f"/{bucket}/via/proxy.bin", "", "bytes=10-19", 206, None)
    assert proxy.connections_accepted >= 1


def test_if_match_412_after_change_between_gets(ep, s3, bucket, proxy, ps3):
    old, new = os.urandom(200_000), os.urandom(150_000)
    s3.put_object(Bucket=bucket, Key="changing.bin", Body=old)
    proxy.change_between_gets("changing.bin", new)
    first = ps3.get_object(Bucket=bucket, Key="changing.bin")
    assert first["Body"].read() == old and first["ETag"] == md5_etag(old)
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        ps3.get_object(Bucket=bucket, Key="changing.bin", Range="bytes=0-99",
                       IfMatch=first["ETag"])
    assert err(ei.value) == ("PreconditionFailed", 412)
    now = ps3.get_object(Bucket=bucket, Key="changing.bin")
    assert now["Body"].read() == new and now["ETag"] == md5_etag(new)
    assert [(e.method, e.range, e.status, e.fault) for e in proxy.log()] == [
        ("GET", None, 200, "change"), ("GET", "bytes=0-99", 412, None), ("GET", None, 200, None)]
    assert proxy.changes()[0]["replaced"] == f"{bucket}/changing.bin"


def test_slowdown_503_with_retries_off(ep, s3, bucket, proxy, ps3):
    s3.put_object(Bucket=bucket, Key="slow.txt", Body=b"hello")
    proxy.slowdown(1, method="GET", key="slow.txt")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        ps3.get_object(Bucket=bucket, Key="slow.txt")
    assert err(ei.value) == ("SlowDown", 503)
    assert ps3.get_object(Bucket=bucket, Key="slow.txt")["Body"].read() == b"hello"
    # boto3's own retries see the next two and get through on the third
    proxy.slowdown(2, key="slow.txt")
    assert client(ep, url=proxy.url, attempts=3).get_object(
        Bucket=bucket, Key="slow.txt")["Body"].read() == b"hello"
    assert [e.status for e in proxy.log()] == [503, 200, 503, 503, 200]


def test_error_fault_any_status(ep, s3, bucket, proxy, ps3):
    proxy.error(1, 500, "InternalError", method="PUT")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        ps3.put_object(Bucket=bucket, Key="err/small", Body=b"x" * 100)
    assert err(ei.value) == ("InternalError", 500)
    # an Expect: 100-continue body is answered without reading it
    proxy.error(1, 503, "ServiceUnavailable", method="PUT")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        ps3.put_object(Bucket=bucket, Key="err/big", Body=io.BytesIO(os.urandom(2 << 20)))
    assert err(ei.value) == ("ServiceUnavailable", 503)
    for k in ("err/small", "err/big"):  # not forwarded
        with pytest.raises(botocore.exceptions.ClientError) as ei:
            s3.head_object(Bucket=bucket, Key=k)
        assert err(ei.value)[1] == 404
    ps3.put_object(Bucket=bucket, Key="err/small", Body=b"ok")  # fault used up
    assert proxy.faults() == []


def test_cut_body_is_an_error(ep, s3, bucket, proxy, ps3):
    s3.put_object(Bucket=bucket, Key="cut.bin", Body=os.urandom(100_000))
    proxy.cut(1, 1000, method="GET")
    r = ps3.get_object(Bucket=bucket, Key="cut.bin")  # headers arrive whole
    with pytest.raises((botocore.exceptions.ResponseStreamingError,
                        botocore.exceptions.IncompleteReadError)):
        r["Body"].read()
    assert len(ps3.get_object(Bucket=bucket, Key="cut.bin")["Body"].read()) == 100_000
    assert [(e.status, e.fault) for e in proxy.log()] == [(200, "cut"), (200, None)]
    # -1: the request is served upstream, the client gets no answer
    proxy.cut(1, -1, method="PUT")
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        ps3.put_object(Bucket=bucket, Key="cut-put.txt", Body=b"landed")
    assert s3.get_object(Bucket=bucket, Key="cut-put.txt")["Body"].read() == b"landed"


def test_stall_past_read_timeout(ep, s3, bucket, proxy):
    s3.put_object(Bucket=bucket, Key="stall.txt", Body=b"zzz")
    proxy.stall(1, 3, key="stall.txt")
    t0 = time.monotonic()
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        client(ep, url=proxy.url, read_timeout=1).get_object(Bucket=bucket, Key="stall.txt")
    assert time.monotonic() - t0 < 2.5
    # a server that stops sending mid-body
    s3.put_object(Bucket=bucket, Key="stall.bin", Body=os.urandom(100_000))
    proxy.stall(1, 3, key="stall.bin", after_bytes=1000)
    r = client(ep, url=proxy.url, read_timeout=1).get_object(Bucket=bucket, Key="stall.bin")
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        r["Body"].read()
    # a stall shorter than the timeout only delays
    proxy.stall(1, 0.5, key="stall.txt")
    t0 = time.monotonic()
    assert client(ep, url=proxy.url, read_timeout=5).get_object(
        Bucket=bucket, Key="stall.txt")["Body"].read() == b"zzz"
    assert time.monotonic() - t0 >= 0.5


def test_refuse_then_allow(ep, s3, bucket, proxy, ps3):
    s3.put_object(Bucket=bucket, Key="refuse.txt", Body=b"r")
    assert ps3.get_object(Bucket=bucket, Key="refuse.txt")["Body"].read() == b"r"  # pooled now
    proxy.refuse()
    for c in (ps3, client(ep, url=proxy.url)):  # pooled and fresh connections
        with pytest.raises((botocore.exceptions.ConnectionError,
                            botocore.exceptions.HTTPClientError)):
            c.get_object(Bucket=bucket, Key="refuse.txt")
    proxy.refuse(close_listener=True)  # now connect() itself fails
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        client(ep, url=proxy.url).get_object(Bucket=bucket, Key="refuse.txt")
    proxy.allow()
    assert ps3.get_object(Bucket=bucket, Key="refuse.txt")["Body"].read() == b"r"


def test_many_concurrent_connections(ep, s3, bucket, proxy):
    data = os.urandom(50_000)
    s3.put_object(Bucket=bucket, Key="conc.bin", Body=data)
    clients = [client(ep, url=proxy.url) for _ in range(4)]

    def get(i):
        return clients[i % 4].get_object(Bucket=bucket, Key="conc.bin")["Body"].read() == data

    with concurrent.futures.ThreadPoolExecutor(32) as ex:
        assert all(ex.map(get, range(128)))
    assert proxy.count("GET") == 128
    assert proxy.connections_accepted >= 2


def test_control_over_http(ep, s3, bucket, proxy, ps3):
    def ctl(path, body=None):
        with urllib.request.urlopen(urllib.request.Request(
                proxy.control_url + path, data=body, method="POST")) as r:
            return r.read()

    s3.put_object(Bucket=bucket, Key="ctl.txt", Body=b"c")
    ctl("/slowdown?n=1&method=GET&key=ctl.txt")
    assert json.loads(ctl("/faults"))[0]["code"] == "SlowDown"
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        ps3.get_object(Bucket=bucket, Key="ctl.txt")
    assert err(ei.value) == ("SlowDown", 503)
    ctl("/error?n=1&status=500&code=InternalError")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        ps3.head_object(Bucket=bucket, Key="ctl.txt")
    assert err(ei.value)[1] == 500
    ctl("/change_between_gets?key=ctl.txt", b"new body")
    ps3.get_object(Bucket=bucket, Key="ctl.txt")["Body"].read()
    assert ps3.get_object(Bucket=bucket, Key="ctl.txt")["Body"].read() == b"new body"
    assert ctl("/count?method=GET") == b"3"
    assert json.loads(ctl("/counts")) == {"GET": 3, "HEAD": 1}
    log = json.loads(ctl("/log"))
    assert [(e["method"], e["status"], e["fault"]) for e in log] == [
        ("GET", 503, "SlowDown"), ("HEAD", 500, "InternalError"),
        ("GET", 200, "change"), ("GET", 200, None)]
    ctl("/reset")
    assert json.loads(ctl("/log")) == []


# ---- the proxy's HTTP framing, against a stub upstream ----

class _Echo(http.server.BaseHTTPRequestHandler):
    """Echoes method, Host and the de-chunked body, answering chunked."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_PUT(self):
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:  # then trailers up to a blank line
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out = json.dumps({"method": self.command, "host": self.headers["Host"],
                          "len": len(body), "md5": hashlib.md5(body).hexdigest()}).encode()
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(0, len(out), 7):
            part = out[i:i + 7]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.write(b"0\r\n\r\n")

    do_POST = do_GET = do_PUT


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the cut test breaks a pipe on purpose


def test_proxy_framing_chunked_and_keepalive():
    up = _QuietServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=up.serve_forever, daemon=True).start()
    p = FaultProxy(f"http://127.0.0.1:{up.server_address[1]}").start(control=False)
    try:
        c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
        body = os.urandom(300_000)
        # chunked request body, odd chunk sizes
        c.putrequest("PUT", "/b/k", skip_host=True)
        c.putheader("Host", "bucket.example.test:1234")
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        for i in range(0, len(body), 70_001):
            part = body[i:i + 70_001]
            c.send(b"%x\r\n%s\r\n" % (len(part), part))
        c.send(b"0\r\n\r\n")
        r = json.loads(c.getresponse().read())
        assert r == {"method": "PUT", "host": "bucket.example.test:1234",
                     "len": len(body), "md5": hashlib.md5(body).hexdigest()}
        # Content-Length body on the same connection, then one without a body
        c.request("POST", "/b/k?x=1", body=body[:1000], headers={"Host": "h"})
        assert json.loads(c.getresponse().read())["len"] == 1000
        c.request("GET", "/b/k")
        assert json.loads(c.getresponse().read())["len"] == 0
        assert p.connections_accepted == 1  # all three on one kept-alive connection
        assert [(e.method, e.query, e.status) for e in p.log()] == [
            ("PUT", "", 200), ("POST", "x=1", 200), ("GET", "", 200)]
        # cut counts raw body bytes (chunk framing included)
        p.cut(1, 10)
        c.request("GET", "/b/k")
        with pytest.raises(http.client.IncompleteRead):
            c.getresponse().read()
        c.close()
    finally:
        p.stop()
        up.shutdown()
        up.server_close()


# ---- CLIs and wrapper ----

def test_fault_proxy_cli(ep, s3, bucket):
    p = subprocess.Popen([PY, os.path.join(HERE, "fault_proxy.py"), "--upstream", ep.endpoint],
                         stdout=subprocess.PIPE, text=True)
    s3.put_object(Bucket=bucket, Key="cli.txt", Body=b"1")
    try:
        env = dict(kv.split("=", 1) for kv in p.stdout.readline().split())
        with urllib.request.urlopen(env["S3_PROXY_CONTROL"] + "/slowdown?n=1", data=b"") as r:
            assert r.status == 200
        c = client(ep, url=env["S3_PROXY_ENDPOINT"])
        with pytest.raises(botocore.exceptions.ClientError) as ei:
            c.list_objects_v2(Bucket=bucket, MaxKeys=1)
        assert err(ei.value) == ("SlowDown", 503)
        assert c.list_objects_v2(Bucket=bucket, MaxKeys=1)["KeyCount"] == 1
    finally:
        p.terminate()
        assert p.wait(10) == 0


def _pids_of(run_dir):
    pids = []
    for f in os.listdir(run_dir):
        if f.endswith(".pid"):
            with open(os.path.join(run_dir, f)) as fh:
                pids.append(int(fh.readline()))
    return pids


@swift_only
def test_cli_second_instance_side_by_side(ep, tmp_path):
    d = str(tmp_path / "second")
    out = subprocess.run([PY, os.path.join(HERE, "swift_s3.py"), "start", "--dir", d],
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    env = dict(kv.split("=", 1) for kv in out.stdout.strip().splitlines()[-1].split())
    try:
        assert env["S3_ENDPOINT"] != ep.endpoint
        assert (env["AWS_ACCESS_KEY_ID"], env["AWS_REGION"]) == ("test:tester", "us-east-1")
        pids = _pids_of(os.path.join(d, "run"))
        assert len(pids) == 5 and all(pid_alive(p) for p in pids)
        other = boto3.client("s3", endpoint_url=env["S3_ENDPOINT"], region_name=env["AWS_REGION"],
                             aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                             aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                             config=Config(s3={"addressing_style": "path"}))
        other.create_bucket(Bucket="second-only")
        assert [b["Name"] for b in other.list_buckets()["Buckets"]] == ["second-only"]
    finally:
        stop = subprocess.run([PY, os.path.join(HERE, "swift_s3.py"), "stop", "--dir", d],
                              capture_output=True, text=True, timeout=60)
    assert stop.returncode == 0, stop.stderr
    assert not any(pid_alive(p) for p in pids)
    assert all(pid_alive(p) for p in ep.pids().values())  # the first one is untouched


_CHILD = r"""
import os, sys, boto3
from botocore.config import Config
e = os.environ
with open(sys.argv[1], "w") as f:
    f.write(" ".join(open(os.path.join(sys.argv[2], "run", n)).readline().strip()
                     for n in os.listdir(os.path.join(sys.argv[2], "run")) if n.endswith(".pid")))
for url in (e["S3_ENDPOINT"], e["S3_PROXY_ENDPOINT"]):
    boto3.client("s3", endpoint_url=url, region_name=e["AWS_REGION"],
                 aws_access_key_id=e["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=e["AWS_SECRET_ACCESS_KEY"],
                 config=Config(s3={"addressing_style": "path"})).list_buckets()
import urllib.request
assert b"ok" in urllib.request.urlopen(e["S3_PROXY_CONTROL"] + "/health").read()
sys.exit(7)
"""


@swift_only
def test_with_s3_runs_cmd_and_cleans_up(tmp_path):
    d, pidf = str(tmp_path / "w"), str(tmp_path / "pids")
    r = subprocess.run([PY, os.path.join(HERE, "with_s3.py"), "--proxy", "--dir", d, "--",
                        PY, "-c", _CHILD, pidf, d], capture_output=True, text=True, timeout=90)
    assert r.returncode == 7, r.stderr
    pids = [int(p) for p in open(pidf).read().split()]
    assert len(pids) == 5 and not any(pid_alive(p) for p in pids)


@swift_only
def test_with_s3_sigterm_stops_everything(tmp_path):
    d, pidf = str(tmp_path / "w"), str(tmp_path / "pids")
    w = subprocess.Popen([PY, os.path.join(HERE, "with_s3.py"), "--dir", d, "--", "sh", "-c",
                          f'cat {d}/run/*.pid > {pidf}.tmp && mv {pidf}.tmp {pidf} && exec sleep 60'])
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(pidf):
            assert w.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        w.send_signal(signal.SIGTERM)
        assert w.wait(30) == 128 + signal.SIGTERM
    finally:
        if w.poll() is None:
            w.kill()
    pids = [int(line) for line in open(pidf).read().split("\n") if line.isdigit()]
    assert len(pids) == 5 and not any(pid_alive(p) for p in pids)
