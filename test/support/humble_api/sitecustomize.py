"""The Humble API surface (rclpy 3.3, ROS 2 Humble = JetPack 6) on newer rclpy wheels: imported by every Python
process started with this folder on PYTHONPATH (``make test`` runs the ROS suites so), it removes what rclpy gained
after Humble, so code of ours that reaches for it fails here as it would on a robot.

The lists come from comparing rclpy's humble branch (3.3.15) with the installed rclpy (see
docs/COMPATIBILITY.md). rclpy's own modules may still use their newer internals; only imports from outside rclpy
are refused.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import sys

#: Public rclpy modules newer than Humble.
NEWER_MODULES = {
    "rclpy.parameter_client": "Iron",
    "rclpy.parameter_event_handler": "Iron",
    "rclpy.event_handler": "Iron (Humble: rclpy.qos_event)",
    "rclpy.service_introspection": "Iron",
    "rclpy.type_description_service": "Iron",
    "rclpy.type_hash": "Iron",
    "rclpy.clock_type": "Iron",
    "rclpy.logging_service": "Jazzy",
    "rclpy.subscription_content_filter_options": "Jazzy",
    "rclpy.experimental": "Jazzy",
}
#: Public methods newer than Humble, by class.
NEWER_METHODS = {
    ("rclpy.node", "Node"): (
        "add_post_set_parameters_callback",
        "add_pre_set_parameters_callback",
        "remove_post_set_parameters_callback",
        "remove_pre_set_parameters_callback",
        "count_clients",
        "count_services",
        "get_fully_qualified_node_names",
        "wait_for_node",
    ),
    ("rclpy.subscription", "Subscription"): (
        "get_publisher_count",
        "get_content_filter",
        "set_content_filter",
        "is_cft_enabled",
    ),
    ("rclpy.client", "Client"): ("configure_introspection",),
    ("rclpy.service", "Service"): ("configure_introspection",),
    ("rclpy.action.server", "ActionServer"): ("configure_introspection",),
    ("rclpy.action.client", "ActionClient"): ("configure_introspection",),
}


class _RefuseNewerModules(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):  # type: ignore[no-untyped-def]
        if name in NEWER_MODULES and not _imported_by_rclpy():
            raise ImportError(f"{name} is not in ROS 2 Humble's rclpy (added in {NEWER_MODULES[name]})")
        return None


def _imported_by_rclpy() -> bool:
    frame = sys._getframe(2)
    while frame is not None and "importlib" in frame.f_code.co_filename:
        frame = frame.f_back
    return frame is not None and f"{os.sep}rclpy{os.sep}" in frame.f_code.co_filename


def _strip() -> None:
    import importlib

    for (module_name, class_name), names in NEWER_METHODS.items():
        cls = getattr(importlib.import_module(module_name), class_name)
        for name in names:
            if name in vars(cls):
                delattr(cls, name)


if os.environ.get("ISHOWTTS_HUMBLE_API", "1") == "1":
    sys.meta_path.insert(0, _RefuseNewerModules())
    with contextlib.suppress(ImportError):  # a process without rclpy: nothing to strip
        _strip()
