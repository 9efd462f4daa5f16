"""``rosdep install --from-paths`` over both packages resolves every dependency of their package.xml files on
Humble (jammy) and Jazzy (noble): each is one of the two packages, a ROS package released in both, or a system key
with an Ubuntu rule for both codenames."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = yaml.safe_load((Path(__file__).parent / "rosdep_snapshot.yaml").read_text())
DEPENDENCY_TAGS = ("depend", "exec_depend", "build_depend", "test_depend", "buildtool_depend")


PACKAGE_XMLS = (ROOT / "package.xml", ROOT / "ishowtts_interfaces" / "package.xml")
WORKSPACE = {ET.parse(path).getroot().findtext("name") for path in PACKAGE_XMLS}


def dependencies() -> list[str]:
    roots = [ET.parse(path).getroot() for path in PACKAGE_XMLS]
    return [element.text or "" for root in roots for tag in DEPENDENCY_TAGS for element in root.findall(tag)]


@pytest.mark.parametrize(("distro", "codename"), [("humble", "jammy"), ("jazzy", "noble")])
def test_every_key_resolves(distro, codename):
    unresolved = [
        key
        for key in dependencies()
        if key not in WORKSPACE
        and key not in SNAPSHOT["ros_packages"][distro]
        and not (SNAPSHOT["system_keys"].get(key) or {}).get(codename)
    ]
    assert unresolved == [], f"no rosdep rule on {distro}/{codename} for {unresolved}"


def test_a_key_that_does_not_exist_is_caught():
    """The check is not vacuous: the key this package once declared is unknown to rosdep."""
    assert "espeak-ng" not in SNAPSHOT["system_keys"] and "espeak-ng" not in SNAPSHOT["ros_packages"]["humble"]
