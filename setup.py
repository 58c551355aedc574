"""Which packages and data files the wheel holds; everything else is in pyproject.toml.

resources/ (bundled model and card, demo pair, icons, .desktop file) stays a top-level folder of the
project and ships inside the core package as core/_resources, where core.resources finds it with
importlib.resources. pyproject.toml alone cannot add a mapped folder to the packages it finds.
"""

from setuptools import find_namespace_packages, find_packages, setup

# resources/ and each folder in it, as data-only packages (setuptools ships data by package)
RESOURCES = ["core._resources", *(f"core._resources.{p}" for p in find_namespace_packages(where="resources"))]

setup(
    packages=[*find_packages(include=["core*", "relight_gui*"]), *RESOURCES],
    package_dir={"core._resources": "resources"},
    package_data={"*": ["*.json"], **{p: ["*"] for p in RESOURCES}},
)
