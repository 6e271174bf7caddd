"""The file Streamlit Community Cloud installs asks for torch's CPU build on
Linux (PyPI's Linux torch is the multi-GB CUDA build), and the same version
everywhere; the dev file adds to it rather than repeating it."""

from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def requirements(path: Path) -> list:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("-")]


def torch_pin(platform: str) -> str:
    environment = {"sys_platform": platform, "platform_system": platform}
    pins = []
    for line in requirements(ROOT / "requirements.txt"):
        requirement = Requirement(line)
        if requirement.name == "torch" and (requirement.marker is None or requirement.marker.evaluate(environment)):
            pins.append(str(requirement.specifier))
    assert len(pins) == 1, f"{platform}: {pins}"
    return pins[0]


def test_cloud_gets_the_cpu_build_and_every_platform_the_same_version():
    assert torch_pin("linux") == "==2.13.0+cpu"
    assert torch_pin("darwin") == torch_pin("win32") == "==2.13.0"
    options = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert "-f https://download.pytorch.org/whl/cpu/torch/" in options  # where +cpu wheels are found


def test_every_app_requirement_is_pinned_and_the_dev_file_builds_on_it():
    for line in requirements(ROOT / "requirements.txt"):
        assert str(Requirement(line).specifier).startswith("=="), line
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text().splitlines()
