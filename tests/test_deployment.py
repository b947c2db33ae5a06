"""The image's inputs: requirements.lock agrees with pyproject.toml, and the Dockerfile installs
exactly it, on a base pinned by digest, with a data volume and the worker count from the
environment. Offline: the lock is read as text, extras through the installed packages' metadata.

When a dependency changes in pyproject.toml, run scripts/lock.sh.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# The Dockerfile's base image runs CPython 3.11 on Linux; markers are evaluated for it.
IMAGE_ENVIRONMENT = {"python_version": "3.11", "python_full_version": "3.11.14",
                     "sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                     "platform_machine": "x86_64", "implementation_name": "cpython",
                     "platform_python_implementation": "CPython"}
DIRECT = "psychopharm-cds (pyproject.toml)"
BUILD = "pyproject.toml [build-system]"


@dataclass
class Pin:
    version: Version
    hashes: list[str] = field(default_factory=list)
    via: set[str] = field(default_factory=set)


def read_lock(text: str) -> dict[str, Pin]:
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    for line in text.splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?:\s+\\)?$", line):
            current = pins.setdefault(canonicalize_name(match[1]), Pin(Version(match[2])))
        elif current is not None and (match := re.match(r"^\s+--hash=(\S+)", line)):
            current.hashes.append(match[1])
        elif current is not None and (match := re.match(r"^\s+# via (.+)$", line)):
            current.via |= {part.strip() for part in match[1].split(",")}
    return pins


LOCK = read_lock((ROOT / "requirements.lock").read_text(encoding="utf-8"))
DEPENDENCIES = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
BUILD_REQUIRES = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]


def applies(requirement: Requirement, extra: str = "") -> bool:
    marker = requirement.marker
    return marker is None or marker.evaluate({**IMAGE_ENVIRONMENT, "extra": extra})


def test_the_lock_pins_every_package_with_hashes() -> None:
    assert len(LOCK) >= len(DEPENDENCIES)
    for name, pin in LOCK.items():
        assert pin.hashes, f"{name} has no hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in pin.hashes), name


@pytest.mark.parametrize("requirement", DEPENDENCIES + BUILD_REQUIRES, ids=str)
def test_each_declared_requirement_is_locked_at_a_version_it_allows(
    requirement: Requirement,
) -> None:
    name = canonicalize_name(requirement.name)
    assert name in LOCK, f"{name} is in pyproject.toml but not locked: run scripts/lock.sh"
    assert requirement.specifier.contains(LOCK[name].version, prereleases=True), (
        f"{name}=={LOCK[name].version} is outside {requirement.specifier}: run scripts/lock.sh"
    )


@pytest.mark.parametrize(
    "requirement", [r for r in DEPENDENCIES if r.extras], ids=str
)
def test_the_extras_of_a_dependency_are_locked(requirement: Requirement) -> None:
    # e.g. pyjwt[crypto] needs cryptography, psycopg[binary] needs psycopg-binary.
    needed = {
        canonicalize_name(r.name)
        for r in map(Requirement, metadata.requires(requirement.name) or [])
        if any(applies(r, extra) for extra in requirement.extras) and not applies(r)
    }
    assert needed, f"no requirements found for {requirement}"
    assert needed <= set(LOCK), f"not locked: {sorted(needed - set(LOCK))}"


def test_the_lock_has_no_package_that_nothing_needs() -> None:
    direct = {name for name, pin in LOCK.items() if DIRECT in pin.via}
    build = {name for name, pin in LOCK.items() if BUILD in pin.via}
    assert direct == {canonicalize_name(r.name) for r in DEPENDENCIES}
    assert build == {canonicalize_name(r.name) for r in BUILD_REQUIRES}
    for name, pin in LOCK.items():
        assert pin.via, f"{name} says nothing about why it is locked"
        assert pin.via <= set(LOCK) | {DIRECT, BUILD}, f"{name} is needed by {pin.via}"


# The Dockerfile

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
INSTRUCTIONS = [
    line.strip()
    for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def instructions(keyword: str) -> list[str]:
    return [i for i in INSTRUCTIONS if i.split()[0].upper() == keyword]


def test_the_base_image_is_pinned_by_digest() -> None:
    (base,) = instructions("FROM")
    assert re.fullmatch(r"FROM python:3\.11[\w.-]*@sha256:[0-9a-f]{64}", base), base


def test_dependencies_come_from_the_lock_with_hashes_and_the_project_without_any() -> None:
    runs = " ".join(instructions("RUN"))
    assert "--require-hashes" in runs and "-r requirements.lock" in runs
    assert "--no-deps" in runs  # installing the project itself must not resolve anything
    assert any(i == "COPY requirements.lock ./" for i in INSTRUCTIONS)


def test_the_data_directory_is_a_volume_and_workers_come_from_the_environment() -> None:
    (volume,) = instructions("VOLUME")
    (workdir,) = [w for w in instructions("WORKDIR") if "/var/lib/psychopharm" in w]
    assert workdir.split()[1] in volume
    assert any(i.startswith("ENV WEB_CONCURRENCY=") for i in INSTRUCTIONS)
    (cmd,) = instructions("CMD")
    assert "--workers" not in cmd  # serve reads WEB_CONCURRENCY
    (user,) = instructions("USER")
    assert user != "USER root"


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for entry in (".git", ".venv", "**/__pycache__", "*.sqlite3", "tests", "bench"):
        assert entry in ignored
