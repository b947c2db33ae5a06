"""Bundled configuration data: default.yaml, the ingredient table and the code lists."""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"
