"""The package declaration matches the source tree, and resources ship inside the package."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_source_package_is_declared_in_pyproject():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT / "app").parts)
        for p in (ROOT / "app" / "paretolab").rglob("__init__.py")
    }
    assert found | {"paretolab.resources"} == declared


def test_resources_are_read_through_the_package():
    sample = resources.files("paretolab.resources") / "sample"
    names = {entry.name for entry in sample.iterdir()}
    assert {"digits_cnn.onnx", "digits_cnn.pt", "digits_cnn_state.pth", "digits_split.npz", "digits_cnn.json"} <= names


def test_the_layering_contracts_hold():
    """design.md's layering, enforced by import-linter (pyproject.toml): core never imports Qt,
    the GUI or the jobs; core's stages import one way; widgets reach core only for data classes
    and pure helpers, and never torch, ONNX or OpenVINO."""
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_core_type_checks(tmp_path):
    """mypy on core with disallow_untyped_defs (pyproject.toml)."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]

# -- the desktop bundle and its integration files (the bundle itself builds with `make bundle`) ----

PACKAGING = ROOT / "packaging"
APP_ID = "io.github.paretolab.ParetoLab"


def _desktop_entry() -> dict[str, str]:
    lines = (PACKAGING / f"{APP_ID}.desktop").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_the_desktop_entry_starts_the_command_pyproject_installs_and_the_bundle_builds():
    entry = _desktop_entry()
    script = next(iter(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]))
    assert entry["Exec"].split()[0] == entry["TryExec"] == script == "paretolab"
    assert 'name="paretolab"' in (PACKAGING / "paretolab.spec").read_text()  # the bundle's executable
    assert entry["Icon"] == APP_ID and entry["MimeType"] == "application/x-onnx;"
    assert 'type="application/x-onnx"' in (PACKAGING / "paretolab-mime.xml").read_text()
    metainfo = (PACKAGING / f"{APP_ID}.metainfo.xml").read_text()
    assert f"<id>{APP_ID}</id>" in metainfo and f"{APP_ID}.desktop</launchable>" in metainfo


def test_the_icon_ships_at_every_size_and_in_the_package_data():
    icons = resources.files("paretolab.resources") / "icons"
    names = {entry.name for entry in icons.iterdir()}
    assert {"paretolab.svg", *(f"paretolab-{n}.png" for n in (16, 24, 32, 48, 64, 128, 256, 512))} <= names
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "icons/*" in package_data["paretolab.resources"]
    spec = (PACKAGING / "paretolab.spec").read_text()
    assert 'package-data"]["paretolab.resources"]' in spec  # the bundle ships exactly the package's data


def test_the_desktop_files_validate():
    import shutil

    import pytest

    if not shutil.which("desktop-file-validate") or not shutil.which("appstreamcli"):
        pytest.skip("desktop-file-validate and appstreamcli are not installed here")
    for command in (["desktop-file-validate", str(PACKAGING / f"{APP_ID}.desktop")],
                    ["appstreamcli", "validate", "--no-net", str(PACKAGING / f"{APP_ID}.metainfo.xml")]):
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_self_test_opens_the_sample_builds_a_variant_and_exits_0(tmp_path):
    import os

    result = subprocess.run([sys.executable, "-m", "paretolab", "gui", "--self-test"], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "self-test passed: opened digits_cnn.onnx" in result.stdout


def test_install_and_uninstall_put_the_entry_and_icons_in_place_and_take_them_away(tmp_path):
    """install.sh as the bundle ships it (a fake executable stands in for the built one)."""
    import shutil

    bundle = tmp_path / "ParetoLab"
    (bundle / "share" / "icons").mkdir(parents=True)
    for name in ("install.sh", "uninstall.sh"):
        shutil.copy(PACKAGING / name, bundle / name)
    for name in (f"{APP_ID}.desktop", f"{APP_ID}.metainfo.xml", "paretolab-mime.xml"):
        shutil.copy(PACKAGING / name, bundle / "share" / name)
    for icon in (ROOT / "resources" / "icons").iterdir():
        shutil.copy(icon, bundle / "share" / "icons" / icon.name)
    (bundle / "paretolab").write_text("#!/bin/sh\necho paretolab\n")
    (bundle / "paretolab").chmod(0o755)
    prefix = tmp_path / "prefix"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PREFIX": str(prefix)}
    assert subprocess.run(["sh", str(bundle / "install.sh")], env=env, capture_output=True).returncode == 0
    entry = (prefix / "share" / "applications" / f"{APP_ID}.desktop").read_text()
    assert f'Exec="{bundle}/paretolab" gui %f' in entry and f"TryExec={bundle}/paretolab" in entry
    assert (prefix / "share" / "icons" / "hicolor" / "48x48" / "apps" / f"{APP_ID}.png").exists()
    assert subprocess.run([str(prefix / "bin" / "paretolab")], capture_output=True, text=True).stdout == "paretolab\n"
    assert subprocess.run(["sh", str(bundle / "uninstall.sh")], env=env, capture_output=True).returncode == 0
    assert not (prefix / "bin" / "paretolab").exists() and not (prefix / "share" / "applications" / f"{APP_ID}.desktop").exists()
