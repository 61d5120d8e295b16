"""Fetches the Hadoop 2.7.3 jars a local NameNode/DataNode needs, and builds their classpath.

The jars come from the `pyspark==2.4.8` sdist on PyPI (its `deps/jars/` bundles Hadoop 2.7.3)
plus Debian's Jersey 1 packages (WebHDFS is a Jersey 1 application; the sdist only has
Jersey 2). Everything lives in a cache dir outside the repo. CLI: `python -m deploy.hdfs.jars`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PYSPARK_SDIST = "pyspark==2.4.8"
SDIST_NAME = "pyspark-2.4.8.tar.gz"

# Name prefixes of the sdist jars a NameNode + DataNode load (found by starting both and
# reading NoClassDefFoundErrors). Jersey 2 / JAX-RS 2 jars are left out on purpose: they
# shadow the JSR-311 API Jersey 1 needs.
SDIST_JAR_PREFIXES = (
    "hadoop-common-",
    "hadoop-hdfs-",
    "hadoop-auth-",
    "hadoop-annotations-",
    "guava-",
    "commons-cli-",
    "commons-logging-",
    "commons-lang-2",
    "commons-collections-",
    "commons-configuration-",
    "commons-io-",
    "commons-codec-",
    "commons-math3-",
    "commons-net-",
    "commons-compress-",
    "commons-beanutils-",
    "commons-digester-",
    "commons-httpclient-",
    "log4j-1",
    "slf4j-api-",
    "slf4j-log4j12-",
    "protobuf-java-",
    "htrace-core-",
    "jetty-6",
    "jetty-util-6",
    "javax.servlet-api-",
    "jsp-api-",
    "jackson-core-asl-",
    "jackson-mapper-asl-",
    "jackson-jaxrs-",
    "jackson-xc-",
    "xmlenc-",
    "netty-3",
    "netty-all-",
    "leveldbjni-all-",
    "xercesImpl-",
    "jsr305-",
    "httpclient-",
    "httpcore-",
    "apacheds-",
    "api-asn1-api-",
    "api-util-",
    "zookeeper-",
    "curator-",
    "gson-",
    "avro-1",
    "paranamer-",
    "snappy-java-",
    "xz-",
    "activation-",
)

# Debian packages and the jars (in /usr/share/java) taken from them.
APT_PACKAGES = ("libjersey1-core-java", "libjersey1-server-java", "libjersey1-servlet-java", "libjersey1-json-java")
SYSTEM_JARS = (
    "jersey1-core.jar",
    "jersey1-server.jar",
    "jersey1-servlet.jar",
    "jersey1-json.jar",
    "jsr311-api.jar",
    "jettison.jar",
    "jaxb-api.jar",
    "jaxb-impl.jar",
)
SYSTEM_JAR_DIR = Path("/usr/share/java")


class JarsUnavailable(RuntimeError):
    """The jars could not be fetched (no network, no pip, no apt)."""


def cache_dir() -> Path:
    return Path(os.environ.get("HUILIU_HADOOP_CACHE", Path.home() / ".cache" / "huiliu" / "hadoop"))


def _wanted(name: str) -> bool:
    return name.endswith(".jar") and name.startswith(SDIST_JAR_PREFIXES)


def _download_sdist(cache: Path) -> Path:
    sdist = cache / SDIST_NAME
    if sdist.exists():
        return sdist
    cache.mkdir(parents=True, exist_ok=True)
    # pyspark's setup.py calls pypandoc.convert, gone since pypandoc 1.8: pin it for the build env.
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as bc:
        bc.write("pypandoc<1.8\n")
    # `--no-binary pyspark` (not `:all:`): only pyspark must be the sdist; its build deps may be wheels.
    base = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        "pyspark",
        "-d",
        str(cache),
        PYSPARK_SDIST,
    ]
    try:
        proc = subprocess.run(base[:4] + ["--build-constraint", bc.name] + base[4:], capture_output=True, text=True)
        if proc.returncode != 0 and "no such option" in proc.stderr:
            # Older pip: constraints from the environment also apply to build envs.
            proc = subprocess.run(base, capture_output=True, text=True, env={**os.environ, "PIP_CONSTRAINT": bc.name})
    finally:
        os.unlink(bc.name)
    if proc.returncode != 0 or not sdist.exists():
        raise JarsUnavailable(f"pip download {PYSPARK_SDIST} failed:\n{proc.stderr[-2000:]}")
    return sdist


def _extract_jars(sdist: Path, jar_dir: Path) -> None:
    tmp = jar_dir.with_name(jar_dir.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar:
            name = member.name.rsplit("/", 1)[-1]
            if member.isfile() and "/deps/jars/" in member.name and _wanted(name):
                src = tar.extractfile(member)
                assert src is not None
                with src, open(tmp / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    if not any(tmp.glob("hadoop-hdfs-*.jar")):
        raise JarsUnavailable(f"{sdist} holds no hadoop-hdfs jar")
    shutil.rmtree(jar_dir, ignore_errors=True)
    tmp.rename(jar_dir)  # atomic: a half extraction is never taken for a complete one


def _ensure_system_jars() -> None:
    if all((SYSTEM_JAR_DIR / j).exists() for j in SYSTEM_JARS):
        return
    if shutil.which("apt-get") is None:
        raise JarsUnavailable(f"missing {SYSTEM_JARS} in {SYSTEM_JAR_DIR} and no apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *APT_PACKAGES]
    if subprocess.run(cmd, capture_output=True, env=env).returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env)  # stale package lists
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise JarsUnavailable(f"apt-get install {' '.join(APT_PACKAGES)} failed:\n{proc.stderr[-2000:]}")
    missing = [j for j in SYSTEM_JARS if not (SYSTEM_JAR_DIR / j).exists()]
    if missing:
        raise JarsUnavailable(f"still missing after apt-get: {missing}")


def ensure_jars() -> list[Path]:
    """Fetches what is missing (idempotent, fast when cached) and returns the classpath entries."""
    jar_dir = cache_dir() / "jars"
    stamp = jar_dir / ".prefixes"  # re-extract when the wanted list changes
    if not stamp.exists() or stamp.read_text() != "\n".join(SDIST_JAR_PREFIXES):
        _extract_jars(_download_sdist(cache_dir()), jar_dir)
        stamp.write_text("\n".join(SDIST_JAR_PREFIXES))
    _ensure_system_jars()
    return sorted(jar_dir.glob("*.jar")) + [SYSTEM_JAR_DIR / j for j in SYSTEM_JARS]


def classpath() -> str:
    return os.pathsep.join(str(p) for p in ensure_jars())


def main() -> int:
    try:
        jars = ensure_jars()
    except JarsUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(jars)} jars ready under {cache_dir()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
