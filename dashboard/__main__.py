"""``python -m dashboard``: start the TrapLens Streamlit app on a dataset and a folder of runs.

The command only translates its options into environment variables (``TRAPLENS_DATASET``,
``TRAPLENS_IMAGES``, ``TRAPLENS_RUNS``) and replaces itself with ``streamlit run
dashboard/app.py``, so ``streamlit run`` and ``AppTest`` read exactly the same settings.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dashboard.config import ENV_DATASET, ENV_IMAGES, ENV_RUNS

APP = Path(__file__).resolve().parent / "app.py"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dashboard",
        description="Open the TrapLens dashboard on a COCO Camera Traps dataset and its runs.",
    )
    parser.add_argument("--dataset", nargs="+", required=True, metavar="JSON",
                        help="one or more COCO Camera Traps JSON files (e.g. per-season files)")
    parser.add_argument("--images", required=True, metavar="ROOT",
                        help="folder the JSON file_name entries are relative to")
    parser.add_argument("--runs", required=True, metavar="DIR",
                        help="folder holding run folders (manifest.json + predictions.parquet)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: localhost only)")
    parser.add_argument("--port", type=int, default=8501)
    return parser


def streamlit_argv(*, host: str, port: int) -> list[str]:
    """The ``streamlit run`` command line the launcher execs."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
        "--client.toolbarMode", "viewer",
    ]


def environment(args: argparse.Namespace) -> dict[str, str]:
    """The process environment for the app: the current one plus the three TrapLens settings."""
    env = dict(os.environ)
    env[ENV_DATASET] = os.pathsep.join(str(Path(p).expanduser().resolve()) for p in args.dataset)
    env[ENV_IMAGES] = str(Path(args.images).expanduser().resolve())
    env[ENV_RUNS] = str(Path(args.runs).expanduser().resolve())
    return env


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Missing or broken files are not refused here: the app shows a friendly page that says
    # what is wrong and how to fix it, which is more useful than a one-line exit.
    cmd = streamlit_argv(host=args.host, port=args.port)
    os.execve(sys.executable, cmd, environment(args))
    return 0  # pragma: no cover (execve does not return)


if __name__ == "__main__":
    sys.exit(main())
