"""Terraform for the tests: the CLI on a copy of terraform/ with providers from the machine's local
mirror (found at run time, never assumed), and the modules' HCL read as data with python-hcl2."""

from __future__ import annotations

import copy
import functools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
from hcl2 import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO / "terraform"
MODULES = ("settings", "gcp", "aws", "kubernetes-rbac", "kubernetes-rbac/rules")
EXAMPLES = ("examples/gke", "examples/gke/rbac", "examples/eks", "examples/eks/rbac")
_HCL = SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, preserve_heredocs=False
)
# The timed steps of this process's Terraform runs, printed in the run's summary.
TIMINGS: dict[str, float] = {}


def find_provider_mirror() -> Path:
    """The folder holding registry.terraform.io in the machine's filesystem mirror."""
    found = subprocess.run(
        [
            "find", "/", "-xdev",
            "-path", "*/registry.terraform.io/hashicorp/aws/*",
            "-name", "terraform-provider-aws_*",
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    for line in found.stdout.splitlines():
        path = Path(line)
        if ".terraform" in path.parts:
            continue  # a working directory's copy, not the mirror
        for parent in path.parents:
            if parent.name == "registry.terraform.io":
                return parent.parent
    raise AssertionError("no hashicorp/aws provider in a local filesystem mirror on this machine")


def write_cli_config(path: Path, mirror: Path) -> Path:
    """A CLI config that installs providers from `mirror` only: never from the network."""
    path.write_text(
        "provider_installation {\n"
        f"  filesystem_mirror {{\n    path = {json.dumps(str(mirror))}\n  }}\n"
        "}\n"
    )
    return path


def terraform_env(cli_config: Path, home: Path, extra: Mapping[str, str] = ()) -> dict[str, str]:
    """A minimal environment: no credentials, config or plugin cache of the machine leaks in."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TF_CLI_CONFIG_FILE": str(cli_config),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
    }
    env.update(extra)
    return env


def copy_tree(destination: Path) -> Path:
    """A copy of terraform/ to run in: state, plans and .terraform stay out of the work tree."""
    target = destination / "terraform"
    shutil.copytree(
        TERRAFORM_DIR,
        target,
        ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl"),
    )
    return target


@dataclass
class Terraform:
    """The terraform CLI in one working directory; timed steps are recorded in `timings`."""

    binary: str
    workdir: Path
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    def run(
        self,
        *args: str,
        timed: str | None = None,
        check: bool = True,
        timeout: float = 300,
        env: Mapping[str, str] = (),
    ) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        result = subprocess.run(
            [self.binary, f"-chdir={self.workdir}", *args],
            capture_output=True,
            text=True,
            env={**self.env, **dict(env)},
            timeout=timeout,
            check=False,
        )
        if timed:
            self.timings[timed] = time.monotonic() - started
        if check and result.returncode != 0:
            raise AssertionError(
                f"terraform {' '.join(args)} failed ({result.returncode}) in {self.workdir}:\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def outputs(self) -> dict[str, Any]:
        raw = json.loads(self.run("output", "-json", "-no-color").stdout)
        return {name: entry["value"] for name, entry in raw.items()}


def evaluate(tf: Terraform, source: Path, inputs: Mapping[str, Any], outputs: list[str]) -> Any:
    """Apply a root that only calls the provider-less module `source`; its outputs, or the error."""
    tf.workdir.mkdir(parents=True, exist_ok=True)
    root = {
        "module": {"m": {"source": str(source), **inputs}},
        "output": {name: {"value": f"${{module.m.{name}}}"} for name in outputs},
    }
    (tf.workdir / "main.tf.json").write_text(json.dumps(root, indent=1))
    tf.run("init", "-no-color", "-backend=false")
    result = tf.run("apply", "-auto-approve", "-no-color", check=False)
    if result.returncode != 0:
        return result.stderr
    return tf.outputs()


# --- HCL as data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One labelled block: `kind` is resource, data, ephemeral, variable, output or module."""

    kind: str
    type: str
    name: str
    body: dict[str, Any]
    file: Path

    @property
    def address(self) -> str:
        return f"{self.type}.{self.name}" if self.type else f"{self.kind}.{self.name}"


@functools.cache
def _parse(path: Path, text: str) -> dict[str, Any]:
    parsed: dict[str, Any] = hcl2.loads(text, serialization_options=_HCL)
    return parsed


def parse(path: Path) -> dict[str, Any]:
    """A file's HCL as data (parsed once per content: python-hcl2 is slow)."""
    return copy.deepcopy(_parse(path, path.read_text()))


@dataclass(frozen=True)
class Module:
    """Every .tf file of one directory, parsed."""

    directory: Path

    @property
    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.tf"))

    def blocks(self, kind: str) -> Iterator[Block]:
        typed = kind in ("resource", "data", "ephemeral")
        for path in self.files:
            for entry in parse(path).get(kind, []):
                for first, body in entry.items():
                    if typed:
                        for name, inner in body.items():
                            yield Block(kind, first, name, inner, path)
                    else:
                        yield Block(kind, "", first, body, path)

    def resources(self, prefix: str = "") -> list[Block]:
        return [b for b in self.blocks("resource") if b.type.startswith(prefix)]

    def resource(self, type_: str, name: str) -> dict[str, Any]:
        matches = [b.body for b in self.blocks("resource") if (b.type, b.name) == (type_, name)]
        assert len(matches) == 1, f"{type_}.{name} in {self.directory}: {len(matches)} found"
        return matches[0]

    def data(self, type_: str, name: str) -> dict[str, Any]:
        matches = [b.body for b in self.blocks("data") if (b.type, b.name) == (type_, name)]
        assert len(matches) == 1, f"data.{type_}.{name} in {self.directory}: {len(matches)} found"
        return matches[0]

    def variables(self) -> dict[str, dict[str, Any]]:
        return {b.name: b.body for b in self.blocks("variable")}

    def outputs(self) -> dict[str, dict[str, Any]]:
        return {b.name: b.body for b in self.blocks("output")}

    def locals(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for path in self.files:
            for entry in parse(path).get("locals", []):
                merged.update(entry)
        return merged

    def text(self) -> str:
        return "\n".join(path.read_text() for path in self.files)


def module(relative: str) -> Module:
    return Module(TERRAFORM_DIR / relative)


def all_directories() -> list[Module]:
    return [module(name) for name in (*MODULES, *EXAMPLES)]


def dynamic(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The `dynamic "name"` blocks of a body: each with for_each and content."""
    return [entry[name] for entry in body.get("dynamic", []) if name in entry]


def one(value: Any) -> Any:
    """A nested block, which python-hcl2 gives as a list of one."""
    if isinstance(value, list):
        assert len(value) == 1, value
        return value[0]
    return value
