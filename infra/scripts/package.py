"""Builds the deployable zip: main.py, the package and requirements.txt, reproducibly."""

from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EPOCH = (1980, 1, 1, 0, 0, 0)


def files() -> list[tuple[Path, str]]:
    function = REPO / "function"
    chosen = [(function / "main.py", "main.py"), (REPO / "requirements.txt", "requirements.txt")]
    for path in sorted((function / "pod_rebalancer").rglob("*.py")):
        chosen.append((path, str(path.relative_to(function))))
    return chosen


def build(out: Path) -> str:
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, name in files():
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return hashlib.md5(out.read_bytes(), usedforsecurity=False).hexdigest()


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "build" / "function.zip"
    digest = build(target)
    print(f"{target} md5={digest}")
