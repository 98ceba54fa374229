"""Check SigV4 as AWS does: recompute the signature with botocore from the request received."""

from __future__ import annotations

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug import Request


def signature_as_aws_computes_it(request: Request, secret_access_key: str) -> str:
    """Return the signature AWS would expect for the request as a server received it."""
    fields = dict(
        part.strip().split("=", 1)
        for part in request.headers["Authorization"].removeprefix("AWS4-HMAC-SHA256 ").split(",")
    )
    access_key_id, _, region, service, _ = fields["Credential"].split("/")
    received = AWSRequest(
        method=request.method,
        url=f"https://{request.headers['Host']}{request.environ['RAW_URI']}",
        headers={name: request.headers[name] for name in fields["SignedHeaders"].split(";")},
        data=request.get_data(),
    )
    received.context["timestamp"] = request.headers["X-Amz-Date"]
    credentials = Credentials(access_key_id, secret_access_key)
    signer = SigV4Auth(credentials, service, region)
    canonical = signer.canonical_request(received)
    return signer.signature(signer.string_to_sign(received, canonical), received)
