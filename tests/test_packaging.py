"""The installable wheel: every package listed, the configs inside it, and `seqlab` working from another directory."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
REPO = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "seqlab").rglob("__init__.py")}
    assert found | {"seqlab.conf"} == listed, (
        "add new packages to [tool.setuptools] packages in pyproject.toml"
    )


@pytest.mark.slow  # a subprocess or real-data training: run by .ci/run after the default suite
def test_the_wheel_carries_its_configs_and_runs_from_any_directory(tmp_path):
    """Built and installed into a fresh venv (~10 s): `seqlab --help` and `seqlab train ... --cfg job` from another
    directory, with the packaged configs and a user's own config folder (--config-dir) in front of them."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("seqlab-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    # the dependencies come from this environment's site-packages (not its editable seqlab): no downloads
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")} | {
        "HF_HUB_OFFLINE": "1"
    }

    def seqlab(*args: str) -> str:
        proc = subprocess.run(
            [venv / "bin" / "seqlab", *args], cwd=elsewhere, env=env, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout

    where = subprocess.run(
        [venv / "bin" / "python", "-c", "import seqlab.cli as c; print(c.__file__, c.CONF_DIR)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert where[0].startswith(str(site)) and where[1].startswith(str(site))  # the wheel's code and configs
    assert "finetune" in seqlab("--help")
    job = seqlab("train", "+experiment=lstm", "--cfg", "job")
    assert "NegationSentimentSource" in job and "cell: lstm" in job
    # the user's own config folder in front of the packaged one
    mine = tmp_path / "my_confs" / "experiment"
    mine.mkdir(parents=True)
    (mine / "my_exp.yaml").write_text(
        "# @package _global_\ndefaults:\n  - lstm\nmodel:\n  encoder:\n    hidden_size: 7\n"
    )
    job = seqlab("train", "--config-dir", str(tmp_path / "my_confs"), "+experiment=my_exp", "--cfg", "job")
    assert "hidden_size: 7" in job and "cell: lstm" in job
