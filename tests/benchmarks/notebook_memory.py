"""Peak memory of each tutorial's kernel, to check they fit mybinder.org (which kills a kernel at 2 GB).

    .venv/bin/python tests/benchmarks/notebook_memory.py [--full] [notebooks/04_attention.ipynb ...]

Runs each notebook in a fresh kernel (``WORKBENCH_QUICK=1`` unless ``--full``: the same models
and batch sizes, fewer steps), in the environment ``binder/start`` sets on mybinder.org (one
thread, glibc returning freed memory), and samples the kernel's resident memory every 50 ms. The
last line is JSON: peak MB per notebook, the largest, and the goal (1,500 MB).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def peak_rss_mb(path: Path, quick: bool) -> tuple[float, float]:
    import nbformat
    import psutil
    from nbclient import NotebookClient

    os.environ["WORKBENCH_QUICK"] = "1" if quick else "0"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    me = psutil.Process()
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):  # a child may end between the listing and the read
                    peak = max(peak, child.memory_info().rss / 2**20)
            time.sleep(0.05)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    started = time.perf_counter()
    try:
        client.execute()
    finally:
        done.set()
        watcher.join()
    return peak, time.perf_counter() - started


def binder_environment() -> dict[str, str]:
    """The variables binder/start exports."""
    found = {}
    for line in (ROOT / "binder" / "start").read_text().splitlines():
        match = re.match(r"export (\w+)=(\S+)$", line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("notebooks", nargs="*")
    parser.add_argument("--full", action="store_true", help="the full runs instead of QUICK")
    args = parser.parse_args()
    environment = binder_environment()
    os.environ.update(environment)  # the kernels inherit it
    paths = [Path(p) for p in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    results = {}
    for path in paths:
        peak, seconds = peak_rss_mb(path.resolve(), quick=not args.full)
        results[path.stem] = {"peak_mb": round(peak), "seconds": round(seconds, 1)}
        print(f"{path.stem:28} peak {peak:7.0f} MB   {seconds:6.1f} s", flush=True)
    largest = max(r["peak_mb"] for r in results.values())
    print(
        json.dumps(
            {
                "mode": "full" if args.full else "quick",
                "environment": environment,
                "notebooks": results,
                "largest_peak_mb": largest,
                "goal_mb": 1500,
                "within_goal": largest <= 1500,
            }
        )
    )


if __name__ == "__main__":
    main()
