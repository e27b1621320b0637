"""Hydra configs shipped as the package ``abm.conf`` (``config_path="pkg://abm.conf"``)."""
