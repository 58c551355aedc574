"""Which packages and data files the wheel holds; everything else is in pyproject.toml.

resources/ (bundled model and card, demo pair, icons, .desktop file) stays a top-level folder of the
project and ships inside the core package as core/_resources, where core.base.resources finds it with
importlib.resources. pyproject.toml alone cannot add a mapped folder to the packages it finds.
"""

from setuptools import find_namespace_packages, setup

# namespace discovery: a folder of modules without __init__.py (relight_gui/widgets) is a package too
CODE = find_namespace_packages(include=["core", "core.*", "relight_gui", "relight_gui.*"], exclude=["*.__pycache__"])
# resources/ and each folder in it, as data-only packages (setuptools ships data by package)
RESOURCES = ["core._resources", *(f"core._resources.{p}" for p in find_namespace_packages(where="resources"))]

setup(
    packages=[*CODE, *RESOURCES],
    package_dir={"core._resources": "resources"},
    package_data={"*": ["*.json"], **{p: ["*"] for p in RESOURCES}},
)
