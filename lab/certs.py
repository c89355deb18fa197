"""A certificate for localhost, made on this machine: HTTPS with nothing downloaded.

Browsers speak HTTP/2 only over TLS, so lesson 10 needs a certificate for ``localhost``.
:func:`localhost_certificate` makes one with trustme: a certificate authority (CA) of the
course's own, and a certificate it signs for ``localhost``, ``127.0.0.1`` and ``::1``. The
CA is kept in the user's cache, so a browser told once to trust it (its ``ca.pem``)
trusts every later run. Its key never leaves that folder: a CA that a browser trusts can
vouch for any site to that browser, so trust it only in a browser profile kept for the course.
"""

import os
from dataclasses import dataclass
from pathlib import Path

NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class CertificateFiles:
    """The files a TLS server and its clients need.

    ca: the CA's certificate, which clients trust (``curl --cacert``, a browser's list of
        authorities, ``requests.get(url, verify=ca)``).
    chain: the server's certificate followed by the CA's (nginx's ``ssl_certificate``).
    key: the server's private key (nginx's ``ssl_certificate_key``).
    """

    ca: Path
    chain: Path
    key: Path


def default_folder() -> Path:
    """Where the course keeps its CA: ``$XDG_CACHE_HOME/streamlib/https`` (or ``~/.cache``)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "streamlib" / "https"


def localhost_certificate(folder: Path | None = None) -> CertificateFiles:
    """Write a fresh certificate for this machine's names into ``folder``, signed by the
    folder's CA (made on first use), and return the files' paths.

    folder: the default is :func:`default_folder`; tests give a temporary one.
    """
    import trustme

    folder = folder or default_folder()
    folder.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = folder / "ca.pem", folder / "ca-key.pem"
    if ca_cert.exists() and ca_key.exists():
        ca = trustme.CA.from_pem(ca_cert.read_bytes(), ca_key.read_bytes())
    else:
        ca = trustme.CA(organization_name="streamlib course (this machine only)")
        write_private(ca_key, ca.private_key_pem.bytes())
        ca.cert_pem.write_to_path(str(ca_cert))
    server = ca.issue_cert(*NAMES)
    files = CertificateFiles(ca_cert, folder / "localhost.pem", folder / "localhost-key.pem")
    files.chain.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    write_private(files.key, server.private_key_pem.bytes())
    return files


def write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner alone (mode 0600)."""
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(data)
