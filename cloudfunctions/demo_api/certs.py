"""Create the demo API's development CA and server certificate once, in a git-ignored folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import certifi
import trustme

# The demo API listens on this address only; its certificate names it and localhost.
DEMO_API_ADDRESS = "127.0.0.1"


@dataclass(frozen=True)
class DemoCertificates:
    ca: Path  # the development CA alone
    trust: Path  # certifi's bundle plus that CA: what the app's transport trusts
    cert: Path  # the server's certificate chain
    key: Path  # the server's private key


def certificate_paths(folder: Path) -> DemoCertificates:
    """Return where the demo API's certificates live in ``folder``."""
    return DemoCertificates(
        ca=folder / "ca.pem",
        trust=folder / "trust.pem",
        cert=folder / "server.pem",
        key=folder / "server.key",
    )


def ensure_certificates(folder: Path) -> DemoCertificates:
    """Create the CA, the server certificate and the trust bundle unless all exist."""
    paths = certificate_paths(folder)
    if all(path.exists() for path in (paths.ca, paths.trust, paths.cert, paths.key)):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="Process Orchestration development CA")
    server = ca.issue_cert(DEMO_API_ADDRESS, "localhost")
    server.private_key_pem.write_to_path(str(paths.key))
    paths.key.chmod(0o600)
    server.cert_chain_pems[0].write_to_path(str(paths.cert))
    ca.cert_pem.write_to_path(str(paths.ca))
    # The transport trusts one bundle: the public CAs as before, and this CA besides.
    public = Path(certifi.where()).read_bytes()
    paths.trust.write_bytes(public.rstrip(b"\n") + b"\n" + ca.cert_pem.bytes())
    return paths
