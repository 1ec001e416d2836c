"""The JupyterLab that `make lab` and Binder start: no news prompt over the tutorials, no update check.

One file, ``binder/lab-settings/overrides.json``, changes JupyterLab's defaults (a person can still turn
news on): `make lab` points ``--LabApp.app_settings_dir`` at its folder, Binder's postBuild copies it
where JupyterLab and Notebook 7 read their defaults.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "binder" / "lab-settings"
NOTIFICATION = "@jupyterlab/apputils-extension:notification"


def _overrides() -> dict:
    return json.loads((SETTINGS / "overrides.json").read_text())


def test_the_settings_turn_the_news_prompt_and_the_update_check_off():
    from jupyterlab.commands import get_app_dir

    settings = _overrides()[NOTIFICATION]
    assert settings == {"fetchNews": "false", "checkForUpdates": False}
    # The names and values are JupyterLab's own: a misspelt key would be ignored, not refused.
    schema = json.loads(
        (Path(get_app_dir()) / "schemas" / "@jupyterlab" / "apputils-extension" / "notification.json").read_text()
    )
    for key, value in settings.items():
        assert key in schema["properties"], key
        assert value in schema["properties"][key].get("enum", [value]), (key, value)


def test_make_lab_starts_jupyterlab_with_these_settings():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^lab:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe, "the Makefile has no lab target"
    folder = re.search(r"--LabApp\.app_settings_dir=(\S+)", recipe.group(1))
    assert folder, "make lab should start jupyter lab with --LabApp.app_settings_dir=$(CURDIR)/binder/lab-settings"
    assert ROOT / folder.group(1).replace("$(CURDIR)/", "") == SETTINGS


def test_binder_copies_the_same_settings_where_jupyterlab_reads_its_defaults(tmp_path):
    post_build = (ROOT / "binder" / "postBuild").read_text()
    lines = [line for line in post_build.splitlines() if "settings" in line and not line.startswith("#")]
    assert any("overrides.json" in line for line in lines), "binder/postBuild does not install the lab settings"
    env = dict(
        os.environ, JUPYTERLAB_DIR=str(tmp_path), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    script = "set -euo pipefail\n" + "\n".join(lines)
    subprocess.run(["bash", "-c", script, str(ROOT / "binder" / "postBuild")], cwd=tmp_path, env=env, check=True)
    assert json.loads((tmp_path / "settings" / "overrides.json").read_text()) == _overrides()
