#!/usr/bin/python3
"""A throwaway S3 endpoint for tests: single-node OpenStack Swift (Debian's
swift 2.30 packages) with the s3api and tempauth middlewares on loopback.

Module:  ep = s3_endpoint(base_dir); ep.start(); ...; ep.stop()
CLI:     swift_s3.py start --dir DIR   (last stdout line: S3_ENDPOINT=... ...)
         swift_s3.py stop --dir DIR

If STRIA_TEST_S3_ENDPOINT is set, s3_endpoint() returns the external endpoint
named there (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_REGION) and starts nothing.
"""
import argparse
import getpass
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

ACCESS_KEY = "test:tester"  # tempauth's account:user is the S3 access key
SECRET_KEY = "testing"
REGION = "us-east-1"
SERVICES = ("memcached", "account", "container", "object", "proxy")
SWIFT_CONF = "/etc/swift/swift.conf"  # Swift hard-codes this path


def free_ports(n):
    """n distinct free loopback ports (bind to port 0; all held until every
    one is picked, so the kernel cannot hand out the same one twice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def pid_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def http_ok(port, path="/healthcheck", timeout=0.5):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            c.request("GET", path)
            return c.getresponse().status == 200
        finally:
            c.close()
    except OSError:
        return False


def memcached_ok(port, timeout=0.5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"version\r\n")
            return s.recv(64).startswith(b"VERSION")
    except OSError:
        return False


def _set_pdeathsig():
    # Runs in the child before exec: die with the parent (e.g. a SIGKILLed
    # ctest wrapper) instead of leaking servers.
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class StartError(RuntimeError):
    pass


class _Endpoint:
    endpoint = access_key = secret_key = region = None

    def env(self):
        """The variables a client under test reads."""
        return {"S3_ENDPOINT": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_REGION": self.region}

    def env_line(self):
        return " ".join(f"{k}={v}" for k, v in self.env().items())

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


class ExternalS3(_Endpoint):
    """An endpoint someone else runs; start/stop do nothing."""

    def __init__(self, endpoint, access_key, secret_key, region=REGION):
        self.endpoint = endpoint.rstrip("/")
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self.startup_s = 0.0

    def start(self):
        return self

    def stop(self):
        pass


class SwiftS3(_Endpoint):
    """Swift + s3api under base_dir: etc/ (configs, rings), srv/ (the one
    device), run/ (pid files, state.json), log/ (one file per process)."""

    def __init__(self, base_dir, die_with_parent=False, start_timeout=60.0):
        self.base_dir = os.path.abspath(base_dir)
        self.etc = os.path.join(self.base_dir, "etc")
        self.srv = os.path.join(self.base_dir, "srv")
        self.run = os.path.join(self.base_dir, "run")
        self.logs = os.path.join(self.base_dir, "log")
        self.die_with_parent = die_with_parent
        self.start_timeout = start_timeout
        self.access_key, self.secret_key, self.region = ACCESS_KEY, SECRET_KEY, REGION
        self.ports = {}
        self.endpoint = None
        self.startup_s = None
        self._procs = {}  # name -> Popen, when this process spawned them

    # ---- configuration ----

    def _write_configs(self):
        for d in (self.etc, os.path.join(self.srv, "d1"), self.run, self.logs):
            os.makedirs(d, exist_ok=True)
        if not os.path.exists(SWIFT_CONF):
            os.makedirs(os.path.dirname(SWIFT_CONF), exist_ok=True)
            with open(SWIFT_CONF, "w") as f:
                f.write("[swift-hash]\nswift_hash_path_suffix = stria-test\n"
                        "swift_hash_path_prefix = stria-test\n"
                        "[storage-policy:0]\nname = Policy-0\ndefault = yes\n")
        # workers = 0: one process per server, no forked children, so the
        # recorded pid is the whole server. Generous timeouts: a loaded 2-core
        # machine must not turn container updates into async pendings (which
        # nothing here would ever process, so listings would miss keys).
        common = (f"[DEFAULT]\nswift_dir = {self.etc}\ndevices = {self.srv}\n"
                  f"mount_check = false\nuser = {getpass.getuser()}\n"
                  f"bind_ip = 127.0.0.1\nworkers = 0\nlog_level = WARNING\n"
                  f"disable_fallocate = true\nfallocate_reserve = 0\n"
                  # a port taken under us: fail fast and retry, not 30 s of binding
                  f"bind_timeout = 2\n")
        extra = {
            "object": "container_update_timeout = 20\nconn_timeout = 5\nnode_timeout = 20\n",
            "container": "conn_timeout = 5\nnode_timeout = 20\n",
            "account": "",
        }
        for s in ("object", "container", "account"):
            self._write(f"{s}-server.conf",
                        common + f"bind_port = {self.ports[s]}\n\n"
                        f"[pipeline:main]\npipeline = healthcheck {s}-server\n\n"
                        f"[app:{s}-server]\nuse = egg:swift#{s}\n{extra[s]}\n"
                        "[filter:healthcheck]\nuse = egg:swift#healthcheck\n")
        # s3api must sit before the auth middleware; slo is needed for
        # multipart uploads, copy for CopyObject.
        filters = ["catch_errors", "gatekeeper", "healthcheck", "proxy-logging",
                   "cache", "listing_formats", "bulk", "s3api", "tempauth",
                   "copy", "slo", "dlo", "symlink"]
        conf = (f"[DEFAULT]\nswift_dir = {self.etc}\nuser = {getpass.getuser()}\n"
                f"bind_ip = 127.0.0.1\nbind_port = {self.ports['proxy']}\n"
                f"workers = 0\nlog_level = WARNING\nbind_timeout = 2\n\n"
                f"[pipeline:main]\npipeline = {' '.join(filters)} proxy-logging proxy-server\n\n"
                "[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n"
                "allow_account_management = true\nconn_timeout = 5\nnode_timeout = 30\n"
                "object_chunk_size = 1048576\nclient_chunk_size = 1048576\n\n"
                f"[filter:s3api]\nuse = egg:swift#s3api\nlocation = {REGION}\ns3_acl = false\n\n"
                # tempauth checks each S3 request's signature against this key
                f"[filter:tempauth]\nuse = egg:swift#tempauth\n"
                f"user_test_tester = {SECRET_KEY} .admin\n\n"
                f"[filter:cache]\nuse = egg:swift#memcache\n"
                f"memcache_servers = 127.0.0.1:{self.ports['memcached']}\n\n")
        for f in filters:
            if f not in ("s3api", "tempauth", "cache"):
                conf += f"[filter:{f}]\nuse = egg:swift#{f.replace('-', '_')}\n"
        self._write("proxy-server.conf", conf)

    def _write(self, name, text):
        with open(os.path.join(self.etc, name), "w") as f:
            f.write(text)

    def _build_rings(self):
        # In-process: nine swift-ring-builder runs would cost seconds.
        import warnings
        with warnings.catch_warnings():  # eventlet/swift deprecation noise
            warnings.simplefilter("ignore", DeprecationWarning)
            from swift.common.ring import RingBuilder
        for r in ("account", "container", "object"):
            b = RingBuilder(6, 1, 1)
            b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1",
                       "port": self.ports[r], "device": "d1", "weight": 100})
            b.rebalance(seed=1)
            b.get_ring().save(os.path.join(self.etc, f"{r}.ring.gz"))

    # ---- processes ----

    def _commands(self):
        user = getpass.getuser()
        cmds = {"memcached": ["/usr/bin/memcached", "-l", "127.0.0.1",
                              "-p", str(self.ports["memcached"]), "-U", "0",
                              "-m", "64", "-u", user]}
        for s in ("account", "container", "object", "proxy"):
            cmds[s] = [f"/usr/bin/swift-{s}-server",
                       os.path.join(self.etc, f"{s}-server.conf"), "-v"]
        return cmds

    def _pidfile(self, name):
        return os.path.join(self.run, f"{name}.pid")

    def _state_file(self):
        return os.path.join(self.run, "state.json")

    def _spawn(self, name, argv):
        log = open(os.path.join(self.logs, f"{name}.log"), "ab")
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 preexec_fn=_set_pdeathsig if self.die_with_parent else None)
        finally:
            log.close()
        self._procs[name] = p
        # pid plus a cmdline fragment, so stop() never signals a recycled pid
        with open(self._pidfile(name), "w") as f:
            f.write(f"{p.pid}\n{' '.join(argv)}\n")

    def _healthy(self, name):
        port = self.ports[name]
        return memcached_ok(port) if name == "memcached" else http_ok(port)

    def _log_tail(self, name, n=2000):
        try:
            with open(os.path.join(self.logs, f"{name}.log"), "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - n))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def _recorded(self):
        """{name: (pid, cmdline fragment)} from the pid files."""
        out = {}
        for name in SERVICES:
            try:
                with open(self._pidfile(name)) as f:
                    lines = f.read().splitlines()
                out[name] = (int(lines[0]), lines[1] if len(lines) > 1 else "")
            except (OSError, ValueError, IndexError):
                pass
        return out

    def _adopt(self):
        """Reuse servers already running from this base_dir (CLI start twice)."""
        try:
            with open(self._state_file()) as f:
                st = json.load(f)
        except (OSError, ValueError):
            return False
        rec = self._recorded()
        if set(rec) != set(SERVICES) or not all(
                pid_alive(pid) and frag in pid_cmdline(pid) for pid, frag in rec.values()):
            return False
        self.ports = st["ports"]
        if not all(self._healthy(n) for n in SERVICES):
            return False
        self.endpoint = f"http://127.0.0.1:{self.ports['proxy']}"
        self.startup_s = 0.0
        return True

    def start(self):
        t0 = time.monotonic()
        os.makedirs(self.base_dir, exist_ok=True)
        if self._adopt():
            return self
        self.stop()  # leftovers of a half-dead earlier run in this dir
        for attempt in range(3):
            self.ports = dict(zip(SERVICES, free_ports(len(SERVICES))))
            self._write_configs()
            self._build_rings()
            for name, argv in self._commands().items():
                self._spawn(name, argv)
            err = self._wait_healthy()
            if err is None:
                break
            self.stop()
            # Someone took a port between our probe and the server's bind:
            # pick new ones. Anything else is a real failure.
            if "Address already in use" not in err and "Could not bind" not in err:
                raise StartError(err)
        else:
            raise StartError(f"could not start swift after 3 attempts: {err}")
        self.endpoint = f"http://127.0.0.1:{self.ports['proxy']}"
        with open(self._state_file(), "w") as f:
            json.dump({"ports": self.ports, "endpoint": self.endpoint}, f)
        self.startup_s = time.monotonic() - t0
        return self

    def _wait_healthy(self):
        deadline = time.monotonic() + self.start_timeout
        pending = list(SERVICES)
        while pending:
            for name in list(pending):
                p = self._procs[name]
                if p.poll() is not None:
                    return (f"{name} exited with {p.returncode} during startup; "
                            f"log tail:\n{self._log_tail(name)}")
                if self._healthy(name):
                    pending.remove(name)
            if not pending:
                return None
            if time.monotonic() > deadline:
                return (f"not healthy after {self.start_timeout}s: {pending}; "
                        + "".join(f"\n--- {n}.log:\n{self._log_tail(n)}" for n in pending))
            time.sleep(0.05)
        return None

    def stop(self, timeout=10.0):
        """TERM the recorded pids, KILL what is left at the deadline, wait."""
        rec = self._recorded()
        live = {}
        for name, (pid, frag) in rec.items():
            if pid_alive(pid) and frag in pid_cmdline(pid):
                live[name] = pid
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for sig in (signal.SIGTERM, signal.SIGKILL):
            while live and time.monotonic() < deadline:
                for name, pid in list(live.items()):
                    p = self._procs.get(name)
                    if p is not None and p.pid == pid:
                        p.poll()  # reap our own child so it does not stay a zombie
                    if not pid_alive(pid):
                        del live[name]
                time.sleep(0.02)
            if not live:
                break
            for pid in live.values():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + timeout
        for name in rec:
            try:
                os.unlink(self._pidfile(name))
            except OSError:
                pass
        for p in self._procs.values():
            try:
                p.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
        self._procs.clear()
        try:
            os.unlink(self._state_file())
        except OSError:
            pass
        if live:
            raise RuntimeError(f"could not kill {live}")

    def pids(self):
        return {name: pid for name, (pid, _) in self._recorded().items()}


def s3_endpoint(base_dir, **kw):
    """The external endpoint if STRIA_TEST_S3_ENDPOINT is set, else a SwiftS3
    under base_dir (not started yet)."""
    ext = os.environ.get("STRIA_TEST_S3_ENDPOINT")
    if ext:
        missing = [v for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not os.environ.get(v)]
        if missing:
            raise StartError(f"STRIA_TEST_S3_ENDPOINT is set but {missing} are not")
        return ExternalS3(ext, os.environ["AWS_ACCESS_KEY_ID"],
                          os.environ["AWS_SECRET_ACCESS_KEY"],
                          os.environ.get("AWS_REGION") or REGION)
    return SwiftS3(base_dir, **kw)


def main(argv=None):
    ap = argparse.ArgumentParser(description="single-node Swift + s3api for tests")
    ap.add_argument("action", choices=["start", "stop"])
    ap.add_argument("--dir", required=True, help="state directory (configs, data, pids, logs)")
    a = ap.parse_args(argv)
    ep = s3_endpoint(a.dir)
    try:
        if a.action == "start":
            ep.start()
            if getattr(ep, "startup_s", None):
                print(f"started in {ep.startup_s:.1f}s, logs in {getattr(ep, 'logs', '-')}",
                      file=sys.stderr)
            print(ep.env_line(), flush=True)
        else:
            ep.stop()
    except (StartError, RuntimeError) as e:
        print(f"swift_s3: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
