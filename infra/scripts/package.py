"""Builds the deployable zips, reproducibly (fixed timestamps and order: same input, same bytes).

cloud-functions: main.py, the package and requirements.txt; the platform installs the rest.
lambda: main.py, the package, and every runtime dependency but functions-framework and the
    Pub/Sub client, vendored as manylinux x86_64 wheels for the Python that runs this script (the
    Terraform module's runtime default is that same version), with hash-checked .pyc files so a
    cold start does not compile on Lambda's read-only filesystem.

Run: python infra/scripts/package.py [--kind cloud-functions|lambda] OUT.zip
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EPOCH = (1980, 1, 1, 0, 0, 0)
# Only the Cloud Functions entry points use these; the Lambda package goes without them.
NOT_ON_LAMBDA = {"functions-framework", "google-cloud-pubsub"}
# Lambda's python3.11 runtime is Amazon Linux 2 (glibc 2.26): manylinux2014 (glibc 2.17) wheels.
LAMBDA_PLATFORM = "manylinux2014_x86_64"
# Never imported by the function: the kubernetes client's asyncio flavour (kubernetes.aio) and
# the HTTP stack only it uses, and test suites. Without them the package fits Lambda's limits
# with compiled bytecode; the package test runs the zip to prove nothing needed went.
LAMBDA_PRUNED = (
    "kubernetes/aio",
    "aiohttp",
    "aiohttp_retry",
    "aiohappyeyeballs",
    "aiosignal",
    "frozenlist",
    "multidict",
    "propcache",
    "yarl",
)
# botocore carries the API models of every AWS service (most of its size); the function calls
# these three only (EKS tokens, DescribeCluster, the webhook token), so only they are kept.
BOTOCORE_SERVICES = ("sts", "eks", "secretsmanager")
LAMBDA_ZIPPED_LIMIT = 50 * 1024 * 1024  # a direct upload
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024


def source_files() -> list[tuple[Path, str]]:
    function = REPO / "function"
    chosen = [(function / "main.py", "main.py")]
    for path in sorted((function / "pod_rebalancer").rglob("*.py")):
        chosen.append((path, str(path.relative_to(function))))
    return chosen


def write_zip(out: Path, entries: Iterable[tuple[str, bytes]]) -> str:
    """Entries sorted, each stamped 1980-01-01 with mode 0644; returns the zip's md5."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return hashlib.md5(out.read_bytes(), usedforsecurity=False).hexdigest()


def build(out: Path) -> str:
    """The Cloud Functions source zip."""
    entries = [(name, path.read_bytes()) for path, name in source_files()]
    entries.append(("requirements.txt", (REPO / "requirements.txt").read_bytes()))
    return write_zip(out, entries)


def lambda_requirements() -> list[str]:
    """requirements.txt without what only the Cloud Functions entry points need."""
    kept = []
    for line in (REPO / "requirements.txt").read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement and requirement.split("==")[0].strip().lower() not in NOT_ON_LAMBDA:
            kept.append(requirement)
    return kept


def build_lambda(out: Path) -> tuple[str, int, int]:
    """The Lambda zip; returns its md5, its size and its unzipped size in bytes."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    with tempfile.TemporaryDirectory(prefix="lambda-package-") as tmp:
        staging = Path(tmp) / "package"
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("\n".join(lambda_requirements()) + "\n")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-compile",
                "--only-binary=:all:",
                "--platform",
                LAMBDA_PLATFORM,
                "--implementation",
                "cp",
                "--python-version",
                version,
                "--target",
                str(staging),
                "-r",
                str(requirements),
            ],
            check=True,
        )
        shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts: not importable
        for pruned in LAMBDA_PRUNED:
            shutil.rmtree(staging / pruned)
        for tests in [p for p in staging.rglob("tests") if p.is_dir()]:
            shutil.rmtree(tests)
        for service in (staging / "botocore" / "data").iterdir():
            if service.is_dir() and service.name not in BOTOCORE_SERVICES:
                shutil.rmtree(service)
        for path, name in source_files():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, staging / name)
        # Hash-checked .pyc carry no timestamp, and name their source where Lambda unpacks the
        # code (/var/task), not this temporary directory: the zip stays reproducible.
        compileall.compile_dir(
            staging,
            quiet=2,
            workers=0,
            stripdir=str(staging),
            prependdir="/var/task",
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        entries = [(str(p.relative_to(staging)), p.read_bytes()) for p in files]
        unzipped = sum(len(data) for _, data in entries)
        digest = write_zip(out, entries)
    return digest, out.stat().st_size, unzipped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("cloud-functions", "lambda"), default="cloud-functions")
    parser.add_argument("out", type=Path, nargs="?")
    args = parser.parse_args()
    if args.kind == "cloud-functions":
        target = args.out or REPO / "build" / "function.zip"
        print(f"{target} md5={build(target)}")
        return 0
    target = args.out or REPO / "build" / "lambda.zip"
    digest, zipped, unzipped = build_lambda(target)
    mib = 1024 * 1024
    print(
        f"{target} md5={digest} zipped={zipped / mib:.1f} MiB "
        f"(limit {LAMBDA_ZIPPED_LIMIT // mib}) unzipped={unzipped / mib:.1f} MiB "
        f"(limit {LAMBDA_UNZIPPED_LIMIT // mib})"
    )
    too_big = zipped > LAMBDA_ZIPPED_LIMIT or unzipped > LAMBDA_UNZIPPED_LIMIT
    return 1 if too_big else 0


if __name__ == "__main__":
    raise SystemExit(main())
