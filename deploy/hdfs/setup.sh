#!/usr/bin/env bash
# Fetches everything the local HDFS needs (idempotent; fast when cached):
#   - the Hadoop 2.7.3 jars from the pyspark==2.4.8 sdist (PyPI) into $HUILIU_HADOOP_CACHE
#     (default ~/.cache/huiliu/hadoop), never into the repo;
#   - Debian's Jersey 1 jars (apt-get) when missing.
# CI: call this once before the tests marked `hdfs`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$python" ] || python=python3
cd "$repo"
exec "$python" -m deploy.hdfs.jars "$@"
