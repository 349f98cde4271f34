#!/usr/bin/python3
"""Runs a command against a fresh S3 endpoint (for ctest):

    with_s3.py [--proxy] [--dir DIR] -- CMD ARGS...

Starts Swift + s3api in a temporary directory (or uses the external endpoint
named by STRIA_TEST_S3_ENDPOINT), exports S3_ENDPOINT, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION (with --proxy also S3_PROXY_ENDPOINT and
S3_PROXY_CONTROL: a FaultProxy run in this process) to CMD, runs it, stops
everything by pid whatever happens, and exits with CMD's exit status
(128+N when CMD died of signal N). Creates no buckets.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_proxy import FaultProxy  # noqa: E402
from swift_s3 import StartError, s3_endpoint  # noqa: E402

_FORWARD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        print("usage: with_s3.py [--proxy] [--dir DIR] -- CMD ARGS...", file=sys.stderr)
        return 2
    i = argv.index("--")
    ap = argparse.ArgumentParser(prog="with_s3.py")
    ap.add_argument("--proxy", action="store_true", help="put a FaultProxy in front")
    ap.add_argument("--dir", help="state directory, kept afterwards (default: a temp dir, removed)")
    a = ap.parse_args(argv[:i])
    cmd = argv[i + 1:]
    if not cmd:
        ap.error("no command after --")

    # A signal while starting aborts the start (as an exception, so the
    # finally below stops what was started); later ones go to CMD.
    child = [None]
    got = []
    phase = ["start"]

    def on_signal(signum, _frame):
        got.append(signum)
        if phase[0] == "start":
            raise KeyboardInterrupt
        if phase[0] == "run" and child[0] is not None:
            try:
                child[0].send_signal(signum)
            except ProcessLookupError:
                pass

    for s in _FORWARD:
        signal.signal(s, on_signal)

    base = a.dir or tempfile.mkdtemp(prefix="stria-s3-")
    # die_with_parent: even a SIGKILLed wrapper leaves no servers behind
    ep = s3_endpoint(base, die_with_parent=True)
    proxy = None
    rc = 1
    try:
        ep.start()
        env = dict(os.environ, **ep.env())
        if a.proxy:
            proxy = FaultProxy(ep.endpoint, ep.access_key, ep.secret_key, ep.region).start()
            env["S3_PROXY_ENDPOINT"] = proxy.url
            env["S3_PROXY_CONTROL"] = proxy.control_url
        phase[0] = "run"
        try:
            child[0] = subprocess.Popen(cmd, env=env)
        except OSError as e:
            print(f"with_s3: cannot run {cmd[0]}: {e}", file=sys.stderr)
            return 127
        if got:  # arrived between the phase switch and Popen's return
            child[0].send_signal(got[-1])
        r = child[0].wait()
        rc = 128 - r if r < 0 else r
    except StartError as e:
        print(f"with_s3: endpoint did not start: {e}", file=sys.stderr)
        rc = 1
    except KeyboardInterrupt:
        rc = 128 + (got[0] if got else signal.SIGINT)
    finally:
        phase[0] = "stop"
        for s in _FORWARD:
            signal.signal(s, signal.SIG_IGN)  # let cleanup finish
        if proxy:
            proxy.stop()
        try:
            ep.stop()
        except RuntimeError as e:
            print(f"with_s3: {e}", file=sys.stderr)
            rc = rc or 1
        if not a.dir:
            shutil.rmtree(base, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
