"""The one place the version is written: the package metadata reads it at build time."""

__version__ = "1.0.0.dev0"
