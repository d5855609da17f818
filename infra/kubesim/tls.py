"""A throwaway CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
subjectAltName = IP:127.0.0.1, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default.svc
"""


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise RuntimeError("the openssl command is needed to make the simulator's certificates")
    result = subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def ensure_certs(directory: Path) -> tuple[Path, Path, Path]:
    """(ca.crt, server.crt, server.key) in `directory`, generated once if any is missing."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, cert, key = directory / "ca.crt", directory / "server.crt", directory / "server.key"
    if ca.exists() and cert.exists() and key.exists():
        return ca, cert, key
    # Build in a private directory and move into place, so a concurrent reader never sees half.
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        work = Path(tmp)
        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
        _openssl(
            "req",
            "-x509",
            *ec,
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "3650",
            "-subj",
            "/CN=kubesim-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-addext",
            "subjectKeyIdentifier=hash",
            cwd=work,
        )
        _openssl(
            "req",
            "-new",
            *ec,
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=kube-apiserver",
            cwd=work,
        )
        (work / "server.ext").write_text(SERVER_EXTENSIONS)
        _openssl(
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "3650",
            "-extfile",
            "server.ext",
            cwd=work,
        )
        for name in ("server.key", "server.crt", "ca.crt"):  # ca.crt last: it marks completion
            (work / name).replace(directory / name)
    return ca, cert, key
