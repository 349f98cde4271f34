#!/usr/bin/python3
"""Cross-checks Stria's SigV4 signer against botocore's on random S3 requests.

Usage: sigv4_botocore_check.py SIGV4_SIGN_TOOL [N] [SEED]
Builds N random requests (methods, keys with any characters, query
parameters, headers with odd spacing, bodies), signs each with botocore's
S3SigV4Auth, asks the tool (src/repo/sigv4_sign.cc) for Stria's encoded path
and Authorization header, and fails on the first difference.
"""
import hashlib
import json
import random
import subprocess
import sys
from urllib.parse import quote, urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

tool = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
seed = int(sys.argv[3]) if len(sys.argv) > 3 else random.randrange(1 << 30)
print(f"seed {seed}, {n} requests", flush=True)
rng = random.Random(seed)

ALPHABET = "abcXYZ019 -_.~/!$&'()*+,;=:@%?#[]\"<>\\^`{|}äé日本\t"


def text(lo, hi):
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(lo, hi)))


cases, signed = [], []
for i in range(n):
    method = rng.choice(["GET", "PUT", "POST", "DELETE", "HEAD"])
    host = rng.choice(["127.0.0.1:8080", "s3.us-east-1.amazonaws.com", "bucket.s3.example.com:9000"])
    key = text(1, 40).replace("\t", "x").lstrip("/")
    raw_path = "/" + rng.choice(["", "bucket/"]) + key
    params = {}
    for _ in range(rng.randint(0, 4)):
        params[rng.choice(["prefix", "delimiter", "continuation-token", "uploadId", "partNumber",
                           "max-keys", "list-type", "x" + text(1, 5).replace("\t", "")])] = text(0, 12)
    headers = {}
    if rng.random() < 0.5:
        headers["Range"] = "bytes=%d-%d" % (rng.randrange(1000), 1000 + rng.randrange(1000))
    if rng.random() < 0.3:
        headers["If-Match"] = '"%s"' % hashlib.md5(str(i).encode()).hexdigest()
    if rng.random() < 0.3:
        headers["X-Amz-Meta-Note"] = "  several   spaces\tand tab  "
    if rng.random() < 0.3:
        headers["Content-Type"] = "application/xml"
    body = rng.randbytes(rng.randint(1, 3000)) if method in ("PUT", "POST") and rng.random() < 0.8 else b""
    token = text(10, 30).replace("\t", "") if rng.random() < 0.2 else None
    region = rng.choice(["us-east-1", "eu-west-3", "auto"])
    creds = Credentials("AK" + str(i), "secret/" + text(5, 20), token)
    url = "http://" + host + quote(raw_path, safe="/~")
    req = AWSRequest(method=method, url=url, data=body, headers=headers, params=params)
    S3SigV4Auth(creds, "s3", region).add_auth(req)
    auth = req.headers["Authorization"]
    names = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    sent = {k.lower(): v for k, v in req.headers.items()}
    sent.setdefault("host", urlsplit(url).netloc)
    cases.append({
        "method": method, "raw_path": raw_path,
        "query": [[k, v] for k, v in params.items()],
        "headers": [[name, sent[name]] for name in names],
        "payload_hash": sent["x-amz-content-sha256"],
        "amz_date": sent["x-amz-date"], "region": region,
        "access_key": creds.access_key, "secret_key": creds.secret_key, "token": token or "",
    })
    signed.append((urlsplit(url).path, auth))

out = subprocess.run([tool], input="".join(json.dumps(c) + "\n" for c in cases),
                     capture_output=True, text=True, check=True).stdout.splitlines()
assert len(out) == n, f"the tool answered {len(out)} of {n} requests"
failed = 0
for c, (path, auth), line in zip(cases, signed, out):
    ours = json.loads(line)
    if ours["encoded_path"] != path or ours["authorization"] != auth:
        failed += 1
        if failed <= 3:
            print("DIFFERENT for", json.dumps(c))
            print("  botocore:", path, auth)
            print("  stria:   ", ours["encoded_path"], ours["authorization"])
print(f"{n - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
