"""The layering docs/ARCHITECTURE.md promises, read from every module's imports (top-level and inside functions):
core <- engines <- adapters (ros, wyoming) <- tools, no adapter or the CLI knowing the F5 engine by name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ishowtts_ros"
TOOLS = ("ishowtts_ros.cli", "ishowtts_ros.doctor", "ishowtts_ros.download", "ishowtts_ros.bench")
#: module prefix -> imports it must never make
FORBIDDEN = {
    "ishowtts_ros.core": ("torch", "rclpy", "wyoming", "ament_index_python", "ishowtts_ros.engines",
                          "ishowtts_ros.ros", "ishowtts_ros.wyoming", *TOOLS),
    "ishowtts_ros.engines": ("rclpy", "wyoming", "ishowtts_ros.ros", "ishowtts_ros.wyoming", *TOOLS),
    "ishowtts_ros.ros": ("ishowtts_ros.engines.f5", *TOOLS),
    "ishowtts_ros.wyoming": ("rclpy", "ishowtts_ros.ros", "ishowtts_ros.engines.f5", *TOOLS),
    "ishowtts_ros.cli": ("ishowtts_ros.engines.f5",),
}  # fmt: skip
#: torch-free modules of the F5 engine: the registry, ``auto`` and the node's declarations read them
TORCH_FREE = ("ishowtts_ros.engines.f5", "ishowtts_ros.engines.f5.options", "ishowtts_ros.engines.f5.checkpoint")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).rstrip(".")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def broken(module: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(name for name in MODULES[module] if any(name == f or name.startswith(f + ".") for f in forbidden))


@pytest.mark.parametrize("layer", FORBIDDEN)
def test_no_module_imports_against_the_layering(layer):
    modules = [name for name in MODULES if name == layer or name.startswith(layer + ".")]
    assert modules
    assert {module: broken(module, FORBIDDEN[layer]) for module in modules if broken(module, FORBIDDEN[layer])} == {}


@pytest.mark.parametrize("module", TORCH_FREE)
def test_the_f5_plugin_and_what_it_reads_import_no_torch(module):
    assert broken(module, ("torch", "torchaudio", "f5_tts", "vocos", "ishowtts_ros.engines.f5.engine")) == []
