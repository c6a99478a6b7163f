"""The package version, in a base module so that any layer can name it without importing the package root.

Example:
    >>> from torchdataguard.version import __version__
    >>> __version__.count(".") >= 1
    True
"""
__version__ = "0.1.0"
