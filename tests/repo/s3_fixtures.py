"""pytest fixtures shared by the S3 tier's system tests: one S3 endpoint per
test module (Swift's s3api started in a temporary directory, or the
endpoint in STRIA_TEST_S3_ENDPOINT), stopped by pid at the end. A test
module takes them with `from s3_fixtures import s3`."""
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from swift_s3 import s3_endpoint  # noqa: E402


@pytest.fixture(scope="module")
def s3():
    base = tempfile.mkdtemp(prefix="stria-s3-")
    ep = s3_endpoint(base, die_with_parent=True)
    ep.start()
    yield ep
    ep.stop()
    shutil.rmtree(base, ignore_errors=True)
