"""The deploy recipes agree with pyproject.toml and with what a host needs of them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirements() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def test_requirements_txt_is_pyprojects_dependencies_with_cpu_torch():
    deps = _pyproject()["project"]["dependencies"]
    req = _requirements()
    assert req[0] == f"--extra-index-url {CPU_INDEX}"
    expected = [d + "+cpu" if d.startswith("torch==") else d for d in deps]
    assert req[1:] == expected, "regenerate requirements.txt from pyproject.toml's dependencies"
    torch = [r for r in req if r.startswith("torch")]
    assert len(torch) == 1 and re.fullmatch(r"torch==[\d.]+\+cpu", torch[0])


def test_python_version_file_matches_requires_python():
    version = (ROOT / ".python-version").read_text().strip()
    floor = _pyproject()["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, version.split("."))) >= tuple(map(int, floor.split(".")))
    assert version == "3.11"  # the CPU torch wheel installed in CI and the image is cp311


def test_dockerfile_is_cpu_only_non_root_hosted_with_a_health_check():
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    assert f"ARG TORCH_INDEX={CPU_INDEX}" in text
    assert re.search(r"^USER lmcore$", text, re.M) and "useradd" in text
    assert "LMCORE_PROFILE=hosted" in text and "EXPOSE 8501" in text
    assert re.search(r"^HEALTHCHECK .*/_stcore/health", text, re.M | re.S)
    # one script installs and serves, here and outside a container
    assert "deploy/serve.sh install" in text
    assert text.rstrip().endswith('CMD ["deploy/serve.sh", "serve"]')
    serve = (ROOT / "deploy" / "serve.sh").read_text()
    assert '--no-deps --index-url "$TORCH_INDEX"' in serve  # torch from the CPU index only
    assert '--server.port "${PORT:-8501}"' in serve
    assert "--server.maxUploadSize \"$cap\"" in serve
    assert "--server.enableXsrfProtection true" in serve


def test_huggingface_front_matter_builds_the_docker_space_on_the_apps_port():
    text = (ROOT / "deploy" / "huggingface" / "README.md").read_text()
    front = text.split("---")[1]
    fields = dict(line.split(": ", 1) for line in front.strip().splitlines())
    assert fields["sdk"] == "docker" and fields["app_port"] == "8501"
    assert {"title", "emoji", "colorFrom", "colorTo"} <= set(fields)


def test_xsrf_protection_is_never_turned_off():
    for path in [ROOT / ".streamlit" / "config.toml", *sorted((ROOT / "deploy").rglob("*")),
                 ROOT / "Makefile"]:
        if path.is_file():
            text = path.read_text().replace(" ", "").lower()
            assert "enablexsrfprotection=false" not in text, path
            assert "enablexsrfprotectionfalse" not in text, path
