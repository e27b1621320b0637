"""abm.__version__ comes from the installed package's metadata, with a clear fallback."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import abm
import abm.version


def test_version_is_the_installed_distributions():
    assert abm.__version__ == importlib.metadata.version("oa-abm")
    assert abm.__version__ == abm.version.__version__


def test_fallback_without_metadata(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    spec = importlib.util.spec_from_file_location("fresh_version", abm.version.__file__)
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)  # a fresh copy: the imported module stays as it is
    assert fresh.__version__ == fresh.UNKNOWN_VERSION == "0+unknown"
