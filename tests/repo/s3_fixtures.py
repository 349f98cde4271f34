"""pytest fixtures shared by the S3 tier's system tests, one each per test
module: `s3`, an S3 endpoint (Swift's s3api started in a temporary
directory, or the endpoint in STRIA_TEST_S3_ENDPOINT), stopped by pid at
the end; `proxy`, the fault-injecting proxy in front of it; `s3c`, a boto3
client of it; `cluster`, a local Stria cluster whose daemons have its
credentials. A test module takes them with
`from s3_fixtures import s3, proxy, s3c, cluster`."""
import os
import shutil
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fuse"))
from conftest import Cluster  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402
from swift_s3 import s3_endpoint  # noqa: E402


@pytest.fixture(scope="module")
def s3():
    base = tempfile.mkdtemp(prefix="stria-s3-")
    ep = s3_endpoint(base, die_with_parent=True)
    ep.start()
    yield ep
    ep.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def proxy(s3):
    p = FaultProxy(s3.endpoint, s3.access_key, s3.secret_key, s3.region).start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def s3c(s3):
    import boto3  # only here: importing it costs a second
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=s3.endpoint, region_name=s3.region,
                        aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key,
                        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                                      max_pool_connections=16))


@pytest.fixture(scope="module")
def cluster(s3):
    # Every daemon `local up` starts (the stores fetch, the mover exports)
    # and every client the tests run read these.
    saved = dict(os.environ)
    os.environ.update({"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key})
    c = Cluster()
    yield c
    c.down()
    os.environ.clear()
    os.environ.update(saved)
