"""`stria repo link|unlink|list` against a real local cluster and a real S3
server (Swift's s3api started here, or STRIA_TEST_S3_ENDPOINT): a link is
checked when it is made (bucket, credentials, endpoint), stored in
stria-meta (it survives a restart), and never holds or prints a secret.

    STRIA_BIN_DIR=build-test/bin /usr/bin/python3 -m pytest -q tests/repo/test_repo_link.py
"""
import json
import os
import socket
import subprocess
import sys
import uuid

import boto3
import pytest
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fuse"))
from conftest import Cluster, bin_path  # noqa: E402
from s3_fixtures import s3  # noqa: E402,F401 (a fixture)


@pytest.fixture(scope="module")
def bucket(s3):
    name = "stria-link-" + uuid.uuid4().hex[:10]
    c = boto3.client("s3", endpoint_url=s3.endpoint, region_name=s3.region,
                     aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key,
                     config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
    c.create_bucket(Bucket=name)
    c.put_object(Bucket=name, Key="train/a.bin", Body=b"a")
    return name


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    yield c
    c.down()


def stria(cluster, *args, env=None, user=None, timeout=60):
    """Runs the CLI with only the credentials env gives (none of the
    session's own AWS_* variables leak in)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    e["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/stria-test-credentials"
    e.update(env or {})
    return subprocess.run([bin_path("stria"), *args, "--meta", cluster.meta], capture_output=True,
                          text=True, env=e, timeout=timeout, user=user)


def creds(s3):
    return {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}


def new_dir(cluster):
    d = "/link-" + uuid.uuid4().hex[:8]
    cluster.stria("mkdir", d)
    return d


def test_link_list_unlink(cluster, s3, bucket):
    d = new_dir(cluster)
    r = stria(cluster, "repo", "link", d, f"s3://{bucket}/train", "--endpoint", s3.endpoint,
              "--region", s3.region, env=creds(s3))
    assert r.returncode == 0, r.stderr
    r = stria(cluster, "repo", "list", "--json")
    assert r.returncode == 0, r.stderr
    links = {l["path"]: l for l in json.loads(r.stdout)}
    assert d in links
    l = links[d]
    assert l["url"] == f"s3://{bucket}/train/"
    assert l["endpoint"] == s3.endpoint and l["region"] == s3.region
    assert l["counts"]["dirty_files"] == 0
    text = stria(cluster, "repo", "list").stdout
    assert f"{d} -> s3://{bucket}/train/ at {s3.endpoint}" in text
    # Linked twice, removed while linked: refused with the reason.
    r = stria(cluster, "repo", "link", d, f"s3://{bucket}", "--endpoint", s3.endpoint, env=creds(s3))
    assert r.returncode == 1 and "EEXIST" in r.stderr and "already linked" in r.stderr
    r = stria(cluster, "rm", "-r", d, env=creds(s3))   # lists (imports) it, then refuses
    assert r.returncode == 1 and "EBUSY" in r.stderr, r.stderr
    assert stria(cluster, "repo", "unlink", d).returncode == 0
    assert d not in [l["path"] for l in json.loads(stria(cluster, "repo", "list", "--json").stdout)]
    r = stria(cluster, "repo", "unlink", d)
    assert r.returncode == 1 and "not linked" in r.stderr
    cluster.stria("rm", "-r", d)


def test_link_survives_a_restart_of_meta(cluster, s3, bucket):
    d = new_dir(cluster)
    assert stria(cluster, "repo", "link", d, f"s3://{bucket}", "--endpoint", s3.endpoint,
                 env=creds(s3)).returncode == 0
    subprocess.run([bin_path("stria"), "local", "kill", "--dir", cluster.dir, "meta"], check=True)
    out = subprocess.run([bin_path("stria"), "local", "up", "--dir", cluster.dir], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    r = stria(cluster, "repo", "list", "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    assert d in [l["path"] for l in json.loads(r.stdout)]
    assert stria(cluster, "repo", "unlink", d).returncode == 0


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))   # bound, never listening: connections are refused
    return s


@pytest.mark.parametrize("case", ["no_bucket", "wrong_secret", "unknown_key", "no_credentials",
                                  "endpoint_down", "bad_url", "bad_endpoint"])
def test_link_errors_are_clear_and_store_nothing(cluster, s3, bucket, case):
    d = new_dir(cluster)
    env, url, endpoint, want = creds(s3), f"s3://{bucket}/x", s3.endpoint, None
    port = None
    if case == "no_bucket":
        url, want = "s3://stria-no-such-bucket/p", ["ENOENT", "stria-no-such-bucket", "does not exist"]
    elif case == "wrong_secret":
        env = dict(env, AWS_SECRET_ACCESS_KEY="not-the-secret")
        want = ["EACCES", "refused", bucket]
    elif case == "unknown_key":
        env = dict(env, AWS_ACCESS_KEY_ID="nobody:none")
        want = ["EACCES", "refused"]
    elif case == "no_credentials":
        env = {}
        want = ["credentials", "AWS_ACCESS_KEY_ID", "/nonexistent/stria-test-credentials"]
    elif case == "endpoint_down":
        port = closed_port()
        endpoint = "http://127.0.0.1:%d" % port.getsockname()[1]
        want = ["ECONNREFUSED", endpoint.split("//")[1]]
    elif case == "bad_url":
        url, want = "http://bucket/x", ["EINVAL", "s3://"]
    elif case == "bad_endpoint":
        endpoint, want = "ftp://127.0.0.1:1", ["EINVAL"]
    r = stria(cluster, "repo", "link", d, url, "--endpoint", endpoint, "--timeout", "5", env=env)
    if port:
        port.close()
    assert r.returncode == 1, r.stdout
    assert r.stderr.startswith("stria repo link: "), r.stderr
    for w in want:
        assert w in r.stderr, (w, r.stderr)
    assert "not-the-secret" not in r.stderr and s3.secret_key not in r.stderr
    assert d not in [l["path"] for l in json.loads(stria(cluster, "repo", "list", "--json").stdout)]
    cluster.stria("rm", "-r", d)


def test_link_with_a_credentials_file_profile(cluster, s3, bucket, tmp_path):
    f = tmp_path / "credentials"
    f.write_text(f"[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n"
                 f"[swift]\naws_access_key_id = {s3.access_key}\naws_secret_access_key = {s3.secret_key}\n")
    d = new_dir(cluster)
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(f)}
    r = stria(cluster, "repo", "link", d, f"s3://{bucket}", "--endpoint", s3.endpoint, env=env)
    assert r.returncode == 1 and "EACCES" in r.stderr   # the default profile's keys are wrong
    r = stria(cluster, "repo", "link", d, f"s3://{bucket}", "--endpoint", s3.endpoint, "--profile", "swift",
              env=env)
    assert r.returncode == 0, r.stderr
    l = [l for l in json.loads(stria(cluster, "repo", "list", "--json").stdout) if l["path"] == d][0]
    assert l["profile"] == "swift"
    # The link holds the profile's name, never its keys: not in any output,
    # nor anywhere in stria-meta's files.
    listing = stria(cluster, "repo", "list", "--json").stdout + stria(cluster, "repo", "list").stdout
    assert s3.secret_key not in listing
    for root, _, files in os.walk(os.path.join(cluster.dir, "meta")):
        for name in files:
            with open(os.path.join(root, name), "rb") as fh:
                assert s3.secret_key.encode() not in fh.read(), name
    assert stria(cluster, "repo", "unlink", d).returncode == 0


def test_only_root_links_and_the_directory_must_be_empty(cluster, s3, bucket):
    d = new_dir(cluster)
    cluster.stria("mkdir", d + "/sub")
    r = stria(cluster, "repo", "link", d, f"s3://{bucket}", "--endpoint", s3.endpoint, env=creds(s3))
    assert r.returncode == 1 and "ENOTEMPTY" in r.stderr, r.stderr
    e = new_dir(cluster)
    r = stria(cluster, "repo", "link", e, f"s3://{bucket}", "--endpoint", s3.endpoint, env=creds(s3), user=2001)
    assert r.returncode == 1 and "EPERM" in r.stderr, r.stderr
