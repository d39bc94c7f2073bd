"""sysmenu: the System menu for a headless machine."""

__version__ = "0.1.0"
OCTOPRINT_VERSION = "1.11.8"  # the OctoPrint release whose API sysmenu answers as
