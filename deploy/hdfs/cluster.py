"""A real single-node HDFS (NameNode + DataNode, WebHDFS on) run from the jars of `jars.py`.

Everything (config, metadata, blocks, logs, pid files) lives under `base_dir`; every port is
explicit and bound to 127.0.0.1, so several clusters can run side by side on one machine.

CLI: python -m deploy.hdfs.cluster {fetch|format|start|stop|status} --base-dir DIR [--port-base N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from xml.sax.saxutils import escape

import requests

from deploy.hdfs import jars

HOST = "127.0.0.1"
LOG4J = """log4j.rootLogger=INFO,file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=${hadoop.log.dir}/${hadoop.log.file}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=%d{ISO8601} %p %c{2}: %m%n
"""
# The jars lack the `webapps/` tree of a Hadoop tarball; HttpServer2 only needs each app's
# directory on the classpath (WebHDFS itself is a servlet added in code).
WEBAPPS = ("hdfs", "datanode", "secondary", "static")
WEB_XML = '<?xml version="1.0"?>\n<web-app xmlns="http://java.sun.com/xml/ns/javaee" version="2.5"/>\n'
# Hadoop 2.7 predates the module system; these opens keep its reflection working on Java 17.
JAVA_OPENS = [
    f"--add-opens=java.base/{pkg}=ALL-UNNAMED"
    for pkg in ("java.lang", "java.nio", "sun.nio.ch", "java.util", "java.lang.reflect", "java.net")
]


class ClusterError(RuntimeError):
    pass


def _site_xml(props: dict[str, str]) -> str:
    body = "".join(
        f"  <property><name>{escape(k)}</name><value>{escape(v)}</value></property>\n" for k, v in props.items()
    )
    return f'<?xml version="1.0"?>\n<configuration>\n{body}</configuration>\n'


class HdfsCluster:
    def __init__(
        self,
        base_dir: str | Path,
        namenode_rpc_port: int = 29870,
        namenode_http_port: int = 29871,
        datanode_port: int = 29872,
        datanode_http_port: int = 29873,
        datanode_ipc_port: int = 29874,
        heap_mb: int = 384,
    ) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.ports = {
            "nn_rpc": namenode_rpc_port,
            "nn_http": namenode_http_port,
            "dn": datanode_port,
            "dn_http": datanode_http_port,
            "dn_ipc": datanode_ipc_port,
        }
        self.heap_mb = heap_mb
        self.conf_dir = self.base_dir / "conf"
        self.log_dir = self.base_dir / "logs"
        self.run_dir = self.base_dir / "run"
        self._procs: dict[str, subprocess.Popen] = {}  # daemons this object started

    @classmethod
    def from_port_base(cls, base_dir: str | Path, port_base: int, **kw) -> HdfsCluster:
        """Five consecutive ports starting at port_base."""
        return cls(base_dir, *range(port_base, port_base + 5), **kw)

    @property
    def webhdfs_url(self) -> str:
        return f"http://{HOST}:{self.ports['nn_http']}"

    @property
    def fs_url(self) -> str:
        return f"hdfs://{HOST}:{self.ports['nn_rpc']}"

    # -- configuration -------------------------------------------------------------------
    def write_config(self) -> None:
        for d in (self.conf_dir, self.log_dir, self.run_dir):
            d.mkdir(parents=True, exist_ok=True)
        p = self.ports
        core = {"fs.defaultFS": self.fs_url, "hadoop.tmp.dir": str(self.base_dir / "tmp")}
        hdfs = {
            "dfs.replication": "1",
            "dfs.permissions.enabled": "false",
            "dfs.webhdfs.enabled": "true",
            "dfs.namenode.name.dir": str(self.base_dir / "name"),
            "dfs.datanode.data.dir": str(self.base_dir / "data"),
            "dfs.namenode.rpc-address": f"{HOST}:{p['nn_rpc']}",
            "dfs.namenode.http-address": f"{HOST}:{p['nn_http']}",
            "dfs.datanode.address": f"{HOST}:{p['dn']}",
            "dfs.datanode.http.address": f"{HOST}:{p['dn_http']}",
            "dfs.datanode.ipc.address": f"{HOST}:{p['dn_ipc']}",
            # Not started here, but their defaults would claim well-known ports on all interfaces.
            "dfs.namenode.secondary.http-address": f"{HOST}:0",
            "dfs.namenode.https-address": f"{HOST}:0",
            "dfs.datanode.https.address": f"{HOST}:0",
            "dfs.namenode.backup.address": f"{HOST}:0",
            "dfs.namenode.backup.http-address": f"{HOST}:0",
            # WebHDFS redirects clients to the DataNode by this name: keep it on loopback.
            "dfs.datanode.hostname": HOST,
            "dfs.namenode.datanode.registration.ip-hostname-check": "false",
            "dfs.namenode.safemode.extension": "0",
            "dfs.namenode.safemode.min.datanodes": "0",
            "dfs.heartbeat.interval": "1",
            "dfs.namenode.heartbeat.recheck-interval": "10000",
            # A tiny test disk must not be refused as "full".
            "dfs.datanode.du.reserved": "0",
            "dfs.namenode.resource.du.reserved": "0",
        }
        (self.conf_dir / "core-site.xml").write_text(_site_xml(core))
        (self.conf_dir / "hdfs-site.xml").write_text(_site_xml(hdfs))
        (self.conf_dir / "log4j.properties").write_text(LOG4J)
        for app in WEBAPPS:
            web_inf = self.conf_dir / "webapps" / app / "WEB-INF"
            web_inf.mkdir(parents=True, exist_ok=True)
            (web_inf / "web.xml").write_text(WEB_XML)

    def _java_cmd(self, role: str, main_class: str, *args: str) -> list[str]:
        cp = os.pathsep.join([str(self.conf_dir), jars.classpath()])
        java = shutil.which("java")
        if java is None:
            raise ClusterError("java not found on PATH")
        # C1 only for the one-shot format (starts faster); daemons need C2 for checksum/IO speed.
        jit = ["-XX:TieredStopAtLevel=1"] if role == "format" else []
        return [
            java,
            f"-Xmx{self.heap_mb}m",
            "-XX:+UseSerialGC",
            *jit,
            *JAVA_OPENS,
            "-Djava.net.preferIPv4Stack=true",
            f"-Dhadoop.log.dir={self.log_dir}",
            f"-Dhadoop.log.file={role}.log",
            f"-Dhadoop.home.dir={self.base_dir}",
            "-Dhadoop.root.logger=INFO,file",
            "-cp",
            cp,
            main_class,
            *args,
        ]

    # -- lifecycle -----------------------------------------------------------------------
    def format(self) -> None:
        """Creates a fresh, empty namespace (wipes earlier metadata and blocks)."""
        self.write_config()
        for d in ("name", "data", "tmp"):
            shutil.rmtree(self.base_dir / d, ignore_errors=True)
        cmd = self._java_cmd(
            "format",
            "org.apache.hadoop.hdfs.server.namenode.NameNode",
            "-format",
            "-force",
            "-nonInteractive",
            "-clusterid",
            "huiliu",
        )
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        if proc.returncode != 0:
            raise ClusterError(
                f"namenode -format failed (rc={proc.returncode}); see {self.log_dir}/format.log\n{proc.stderr[-2000:]}"
            )

    def _spawn(self, role: str, main_class: str) -> None:
        if self._alive(role):
            return
        out = open(self.log_dir / f"{role}.out", "ab")
        proc = subprocess.Popen(
            self._java_cmd(role, main_class),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.base_dir,
        )
        out.close()
        self._procs[role] = proc
        (self.run_dir / f"{role}.pid").write_text(str(proc.pid))

    def start(self, timeout: float = 180.0) -> None:
        """Starts both daemons (formatting first if never formatted) and waits until a write works."""
        self.write_config()
        if not (self.base_dir / "name" / "current" / "VERSION").exists():
            self.format()
        if not any(self.status().values()):
            self._check_ports_free()
        self._spawn("namenode", "org.apache.hadoop.hdfs.server.namenode.NameNode")
        self._spawn("datanode", "org.apache.hadoop.hdfs.server.datanode.DataNode")
        try:
            self.wait_ready(timeout)
        except Exception:
            self.stop()
            raise

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        probe = f"{self.webhdfs_url}/webhdfs/v1/tmp/.huiliu-probe"
        last = "no answer yet"
        while time.monotonic() < deadline:
            for role in ("namenode", "datanode"):
                if not self._alive(role):
                    raise ClusterError(f"{role} exited; last lines of {self.log_dir}/{role}.log:\n{self._tail(role)}")
            try:
                # Two-step create: the NameNode answers 307 only once a DataNode can take blocks.
                r = requests.put(
                    probe,
                    params={"op": "CREATE", "overwrite": "true", "user.name": "huiliu"},
                    allow_redirects=False,
                    timeout=5,
                )
                if r.status_code == 307:
                    w = requests.put(r.headers["Location"], data=b"ok", timeout=10)
                    if w.status_code == 201:
                        requests.delete(probe, params={"op": "DELETE", "user.name": "huiliu"}, timeout=5)
                        return
                    last = f"datanode write: HTTP {w.status_code} {w.text[:200]}"
                else:
                    last = f"namenode create: HTTP {r.status_code} {r.text[:200]}"
            except requests.RequestException as exc:
                last = repr(exc)
            time.sleep(0.5)
        raise ClusterError(f"HDFS not writable after {timeout:.0f}s ({last}); logs in {self.log_dir}")

    def stop(self, timeout: float = 30.0) -> None:
        for role in ("datanode", "namenode"):
            pid = self._pid(role)
            if pid is None:
                continue
            if self._alive(role):
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + timeout
                while self._alive(role) and time.monotonic() < deadline:
                    time.sleep(0.2)
                if self._alive(role):
                    os.kill(pid, signal.SIGKILL)
            (self.run_dir / f"{role}.pid").unlink(missing_ok=True)
            self._procs.pop(role, None)

    def status(self) -> dict[str, bool]:
        return {role: self._alive(role) for role in ("namenode", "datanode")}

    # -- helpers -------------------------------------------------------------------------
    def _check_ports_free(self) -> None:
        """A daemon left over on our ports would answer the readiness probe in our place."""
        for name, port in self.ports.items():
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Java does: TIME_WAIT is fine
                try:
                    sock.bind((HOST, port))
                except OSError as exc:
                    raise ClusterError(f"port {port} ({name}) on {HOST} is in use: {exc}") from exc

    def _pid(self, role: str) -> int | None:
        f = self.run_dir / f"{role}.pid"
        return int(f.read_text()) if f.exists() else None

    def _alive(self, role: str) -> bool:
        proc = self._procs.get(role)
        if proc is not None and proc.pid == self._pid(role):
            return proc.poll() is None  # our child: exact, and reaps it when it exits
        pid = self._pid(role)
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return False  # exited, not yet reaped by the process that started it
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (ProcessLookupError, OSError):
            return False
        # Guard against a recycled pid: it must be our java for this base dir (an empty
        # cmdline is a process still being exec'd).
        return not cmdline or str(self.log_dir).encode() in cmdline

    def _tail(self, role: str, lines: int = 30) -> str:
        text = ""
        for name in (f"{role}.log", f"{role}.out"):
            f = self.log_dir / name
            if f.exists():
                text += "\n".join(f.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    def __enter__(self) -> HdfsCluster:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m deploy.hdfs.cluster", description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["fetch", "format", "start", "stop", "status"])
    ap.add_argument("--base-dir", default=os.environ.get("HUILIU_HDFS_DIR", str(Path.home() / ".huiliu" / "hdfs")))
    ap.add_argument("--port-base", type=int, default=29870, help="first of five consecutive ports")
    args = ap.parse_args(argv)
    if args.command == "fetch":
        return jars.main()
    cluster = HdfsCluster.from_port_base(args.base_dir, args.port_base)
    try:
        if args.command == "format":
            cluster.format()
        elif args.command == "start":
            cluster.start()
            print(f"HDFS up: {cluster.fs_url}  WebHDFS {cluster.webhdfs_url}  logs {cluster.log_dir}")
        elif args.command == "stop":
            cluster.stop()
        else:
            print(cluster.status())
    except (ClusterError, jars.JarsUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
