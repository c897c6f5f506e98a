"""The package files are what `colcon build` (ament_python) on Humble/Jazzy expects.

colcon installs: console scripts into lib/<package> (setup.cfg), the ament
index marker into share/ament_index/resource_index/packages/<package>,
package.xml into share/<package>, launch files into share/<package>/launch.
`ros2 run` / `ros2 launch` find nothing if any of these is missing.
"""

import ast
import configparser
import os
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import rclpy_double

ROOT = Path(__file__).resolve().parents[1]
PKG = "lam_ros"
NODES = ["latent_action_node", "policy_node", "recorder_node", "sim_node"]
LAUNCH_FILES = ["policy.launch.py", "record.launch.py", "sim.launch.py"]


@pytest.fixture(scope="module")
def dist():
    """setup()'s keyword arguments, captured by running setup.py with setuptools.setup replaced."""
    import runpy

    import setuptools

    captured = {}
    real_setup, cwd = setuptools.setup, os.getcwd()
    setuptools.setup = lambda **kw: captured.update(kw)
    os.chdir(ROOT)  # setup.py globs launch/*.launch.py relative to its directory
    try:
        runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    finally:
        setuptools.setup, _ = real_setup, os.chdir(cwd)
    return types.SimpleNamespace(**captured)


def test_data_files_install_where_colcon_expects(dist):
    data = {dest: list(files) for dest, files in dist.data_files}
    assert data["share/ament_index/resource_index/packages"] == [f"resource/{PKG}"]
    assert (ROOT / "resource" / PKG).is_file()
    assert data[f"share/{PKG}"] == ["package.xml"]
    launch = data[f"share/{PKG}/launch"]
    for name in LAUNCH_FILES:
        assert f"launch/{name}" in launch
    for f in [f for files in data.values() for f in files]:
        assert (ROOT / f).is_file(), f"data_files lists missing file {f}"


def test_console_scripts_for_every_node(dist, monkeypatch):
    scripts = dict(s.replace(" ", "").split("=") for s in dist.entry_points["console_scripts"])
    rclpy_double.install(monkeypatch)
    import importlib

    for node in NODES:
        target = scripts[node]
        assert target == f"lam_ros.nodes.{node}:main"
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func))


def test_scripts_go_to_lib_package_for_ros2_run():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["develop"]["script_dir"] == f"$base/lib/{PKG}"
    assert cfg["install"]["install_scripts"] == f"$base/lib/{PKG}"


def test_package_xml_declares_ament_python_and_runtime_deps():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == PKG
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root.iter() if e.tag in ("exec_depend", "depend")}
    # every ROS package the node shells and launch files import must be an exec_depend
    imported = set()
    for path in list((ROOT / "lam_ros" / "nodes").glob("*.py")) + [ROOT / "launch" / f for f in LAUNCH_FILES]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    ours = {d.name for d in ROOT.iterdir() if (d / "__init__.py").is_file()}  # lam_ros, sim, models, training
    ros_pkgs = imported - ours - set(sys.stdlib_module_names) - {"numpy"}
    missing = sorted(ros_pkgs - deps)
    assert not missing, f"package.xml lacks <exec_depend> for {missing}"


class _Recorder:
    """Stub launch / launch_ros modules that record what a launch file declares."""

    def __init__(self):
        self.args, self.configs, self.nodes = {}, set(), []

    def modules(self):
        rec = self

        class DeclareLaunchArgument:
            def __init__(self, name, default_value=None, description=None, **kw):
                assert name not in rec.args, f"argument {name} declared twice"
                rec.args[name] = (default_value, description)

        class LaunchConfiguration:
            def __init__(self, name, **kw):
                rec.configs.add(name)
                self.name = name

        class Node:
            def __init__(self, **kw):
                rec.nodes.append(kw)

        def mod(name, **attrs):
            m = types.ModuleType(name)
            m.__dict__.update(attrs)
            m.__path__ = []
            return m

        return {
            "launch": mod("launch", LaunchDescription=lambda entities: list(entities)),
            "launch.actions": mod("launch.actions", DeclareLaunchArgument=DeclareLaunchArgument),
            "launch.conditions": mod("launch.conditions", IfCondition=lambda c: ("if", c)),
            "launch.substitutions": mod("launch.substitutions", LaunchConfiguration=LaunchConfiguration),
            "launch_ros": mod("launch_ros"),
            "launch_ros.actions": mod("launch_ros.actions", Node=Node),
            "launch_ros.parameter_descriptions": mod(
                "launch_ros.parameter_descriptions", ParameterValue=lambda v, value_type=None: v
            ),
        }


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_arguments_have_defaults_and_descriptions(name, monkeypatch):
    rec = _Recorder()
    for mod_name, mod in rec.modules().items():
        monkeypatch.setitem(sys.modules, mod_name, mod)
    namespace = {"__name__": "launch_file"}
    exec(compile((ROOT / "launch" / name).read_text(), name, "exec"), namespace)
    namespace["generate_launch_description"]()
    assert rec.args, f"{name} declares no arguments"
    for arg, (default, description) in rec.args.items():
        assert default is not None, f"{name}: argument {arg} has no default"
        assert description and len(description) > 10, f"{name}: argument {arg} has no description"
    assert rec.configs <= set(rec.args), f"{name} uses undeclared arguments {rec.configs - set(rec.args)}"
    for node in rec.nodes:
        assert node["package"] == PKG and node["executable"] in NODES
    if name == "policy.launch.py":
        for required in ("robot", "checkpoint", "cameras", "device", "control_hz", "dry_run", "instruction"):
            assert required in rec.args
        assert rec.args["dry_run"][0] == "true"
