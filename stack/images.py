"""The project's own container images: every docker/compose.yaml service with a `build`
section (the Spark image, which the spark, rollups and jupyter services run, and Superset),
built with podman or docker.

    python -m stack.images                 # build them all (make images)
    python -m stack.images --only spark    # one of them

Each Dockerfile takes its base as the build argument BASE_IMAGE. Its default comes from
Docker Hub; where the engine cannot pull it (no registry reachable, as on this project's
build machines), a local Debian bookworm with Python 3.11 is built once with mmdebstrap
from Debian's mirror and imported as LOCAL_BASE. Podman runs with the repository's
docker/podman/containers.conf unless CONTAINERS_CONF names another one. The host's CA
bundle goes to the build as the secret `host-ca` (a TLS-inspecting proxy's CA), used by the
download steps only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from conf.settings import REPO_ROOT, Settings, get_settings
from stack.launcher import StackError

COMPOSE_FILE = REPO_ROOT / "docker" / "compose.yaml"
PODMAN_CONF = REPO_ROOT / "docker" / "podman" / "containers.conf"
LOCAL_BASE = "localhost/lakehouse-base:bookworm"
# The base's contents: Debian's minimal variant plus what the Dockerfiles expect of a Python base.
LOCAL_BASE_PACKAGES = "python3,python3-venv,ca-certificates"
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt",)


@dataclass(frozen=True)
class Image:
    service: str
    tag: str
    dockerfile: Path
    context: Path

    @property
    def default_base(self) -> str:
        match = re.search(r"^ARG BASE_IMAGE=(\S+)$", self.dockerfile.read_text(), re.M)
        if match is None:
            raise StackError(f"{self.dockerfile} declares no `ARG BASE_IMAGE=<default>`")
        return match.group(1)


def compose_default(value) -> str:
    """A compose value as it runs with no variable set: each ${NAME:-default} is its default."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(value))


def project_images() -> list[Image]:
    """The images compose.yaml builds, with the tags it gives them."""
    import yaml

    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    images = []
    for name, service in compose["services"].items():
        if "build" in service:
            context = (COMPOSE_FILE.parent / service["build"]["context"]).resolve()
            images.append(Image(name, service["image"], context / service["build"]["dockerfile"], context))
    return images


class Engine:
    """podman or docker on the command line."""

    def __init__(self, settings: Settings) -> None:
        self.name = settings.container_engine or ("podman" if shutil.which("podman") else "docker")
        if shutil.which(self.name) is None:
            raise StackError(f"no container engine: {self.name} is not installed "
                             f"(apt-get install podman, or install Docker; CONTAINER_ENGINE picks one)")
        self.env = dict(os.environ)
        if self.name == "podman":
            self.env.setdefault("CONTAINERS_CONF", str(PODMAN_CONF))

    def command(self, *args: str) -> list[str]:
        return [self.name, *args]

    def run(self, *args: str, check: bool = True, **options) -> subprocess.CompletedProcess:
        options.setdefault("capture_output", True)
        result = subprocess.run(self.command(*args), env=self.env, text=True, **options)
        if check and result.returncode != 0:
            raise StackError(f"`{self.name} {' '.join(args[:3])} ...` failed:\n{(result.stderr or '')[-3000:]}")
        return result

    def has(self, image: str) -> bool:
        return self.run("image", "inspect", image, check=False).returncode == 0

    def pull(self, image: str) -> bool:
        try:
            return self.run("pull", "-q", image, check=False, timeout=600).returncode == 0
        except subprocess.TimeoutExpired:  # a registry that answers too slowly counts as none
            return False


def base_image(engine: Engine, upstream: str) -> str:
    """`upstream` if the engine has it or can pull it; else the local Debian base (built once)."""
    if engine.has(upstream) or engine.pull(upstream):
        return upstream
    if not engine.has(LOCAL_BASE):
        build_local_base(engine, upstream)
    return LOCAL_BASE


def build_local_base(engine: Engine, upstream: str) -> None:
    if shutil.which("mmdebstrap") is None:
        raise StackError(f"cannot pull {upstream}, and mmdebstrap (which builds a local Debian base "
                         f"instead) is not installed: apt-get install mmdebstrap")
    print(f"  {upstream} cannot be pulled: building {LOCAL_BASE} with mmdebstrap (Debian bookworm "
          f"minbase + Python 3.11, ~30 s, once) ...", flush=True)
    debootstrap = subprocess.Popen(
        ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={LOCAL_BASE_PACKAGES}", "bookworm", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    imported = subprocess.run(engine.command("import", "-q", "-", LOCAL_BASE), stdin=debootstrap.stdout,
                              env=engine.env, capture_output=True, text=True)
    debootstrap.stdout.close()
    errors = debootstrap.stderr.read().decode(errors="replace")
    if debootstrap.wait() != 0 or imported.returncode != 0:
        raise StackError(f"building {LOCAL_BASE} failed:\n{errors[-2000:]}{imported.stderr[-2000:]}")


def build(engine: Engine, image: Image, base: str, log_dir: Path) -> float:
    """Build `image` on `base`; seconds taken. Progress: the build's steps, one line each;
    the whole output goes to log_dir/<service>.log."""
    command = ["build", "-f", str(image.dockerfile), "-t", image.tag, "--build-arg", f"BASE_IMAGE={base}"]
    bundle = os.environ.get("SSL_CERT_FILE") or next((b for b in CA_BUNDLES if Path(b).exists()), None)
    if bundle:
        command += ["--secret", f"id=host-ca,src={bundle}"]
    if engine.name == "docker":
        command += ["--progress=plain"]
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{image.service}.log"
    print(f"  building {image.tag} on {base} (log: {log}) ...", flush=True)
    started = time.monotonic()
    step = re.compile(r"^(STEP \d+/\d+: .{0,100})|^#\d+ (\[.{0,100})")
    with open(log, "w") as out:
        process = subprocess.Popen(engine.command(*command, str(image.context)), env=engine.env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for line in process.stdout:
            out.write(line)
            if match := step.match(line):
                print(f"    {match.group(1) or match.group(2)}", flush=True)
    if process.wait() != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
        raise StackError(f"building {image.tag} failed (whole log: {log}):\n{tail}")
    return time.monotonic() - started


def build_all(settings: Settings | None = None, only: list[str] | None = None) -> dict[str, float]:
    """Build the project's images (or the services in `only`); {service: seconds}."""
    settings = settings or get_settings()
    engine = Engine(settings)
    images = [image for image in project_images() if not only or image.service in only]
    unknown = set(only or []) - {image.service for image in images}
    if unknown:
        raise StackError(f"no image for {sorted(unknown)}: the services with one are "
                         f"{[image.service for image in project_images()]}")
    bases: dict[str, str] = {}
    times = {}
    for image in images:
        upstream = image.default_base
        if upstream not in bases:
            bases[upstream] = base_image(engine, upstream)
        times[image.service] = build(engine, image, bases[upstream], Path(settings.runtime_dir) / "images")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.images", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="SERVICE",
                        help="build only this compose service's image (repeatable)")
    args = parser.parse_args(argv)
    try:
        for service, seconds in build_all(only=args.only).items():
            print(f"{service}: built in {seconds:.0f} s")
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
