"""The package is a standard ament_python package that colcon and pip both build."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_package_xml_declares_format_3_and_dependencies():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "ishowtts_ros"
    exec_depends = {e.text for e in root.findall("exec_depend")}
    assert {
        "rclpy",
        "std_msgs",
        "std_srvs",
        "diagnostic_msgs",
        "rcl_interfaces",
        "launch",
        "launch_ros",
    } <= exec_depends
    test_depends = {e.text for e in root.findall("test_depend")}
    assert {"python3-pytest", "launch_testing", "launch_testing_ros"} <= test_depends
    assert root.find("export/build_type").text == "ament_python"


def test_ament_layout_exists():
    for path in ("setup.py", "setup.cfg", "resource/ishowtts_ros", "config/voices.yaml", "launch", "test"):
        assert (ROOT / path).exists(), path


def test_engines_are_entry_points_and_the_test_engine_is_not():
    names = {ep.name for ep in entry_points(group="ishowtts_ros.engines")}
    assert names == {"f5", "espeak"}


def test_metadata_pins_neither_torch_nor_ros():
    setup_text = (ROOT / "setup.py").read_text()
    assert "torch" not in setup_text.split("install_requires")[1].split("]")[0]
    assert "rclpy" not in setup_text


def test_config_file_documents_every_node_parameter():
    import yaml

    from ishowtts_ros.engines.f5 import PLUGIN
    from ishowtts_ros.ros.parameters import LIVE_PARAMETERS, STARTUP_PARAMETERS

    documented = yaml.safe_load((ROOT / "config" / "ishowtts.yaml").read_text())["/**"]["ros__parameters"]
    assert set(documented) == {*LIVE_PARAMETERS, *STARTUP_PARAMETERS, *PLUGIN.options}


def test_float_parameters_have_a_step_that_divides_their_range():
    """rqt_reconfigure moves a slider by the step; rclpy refuses values off it (step 0 made the arrows useless)."""
    from ishowtts_ros.engines.registry import plugins
    from ishowtts_ros.ros.parameters import live_parameters

    options = {name: spec for plugin in plugins().values() for name, spec in plugin.options.items()}
    floats = [desc for _, desc in live_parameters(options).values() if desc.floating_point_range]
    assert len(floats) >= 4
    for desc in floats:
        bounds = desc.floating_point_range[0]
        steps = (bounds.to_value - bounds.from_value) / bounds.step
        assert bounds.step > 0 and abs(steps - round(steps)) < 1e-9, desc.name


def test_the_languages_file_gives_each_namespace_node_parameters_only():
    import yaml

    from ishowtts_ros.engines.f5 import PLUGIN
    from ishowtts_ros.ros.parameters import LIVE_PARAMETERS, STARTUP_PARAMETERS

    models = yaml.safe_load((ROOT / "config" / "languages.yaml").read_text(encoding="utf-8"))
    assert len(models) >= 2
    known = {*LIVE_PARAMETERS, *STARTUP_PARAMETERS, *PLUGIN.options}
    for namespace, parameters in models.items():
        assert set(parameters or {}) <= known, namespace
