"""sysmenu: the System menu for a headless machine."""

__version__ = "0.1.0"
