"""`python -m schemas.registry --host H --port N --data-dir DIR` runs the service."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvicorn

from .server import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m schemas.registry", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)  # Confluent's usual port
    parser.add_argument("--data-dir", type=Path, required=True, help="directory holding registry.db")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    # One stdout handler on the root logger; log_config=None stops uvicorn
    # installing its own (stderr) handlers, so its loggers propagate here.
    logging.basicConfig(
        stream=sys.stdout,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app = create_app(args.data_dir)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, log_level=args.log_level)


if __name__ == "__main__":
    main()
