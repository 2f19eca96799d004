"""edged: the software inside an environmental gate (环保门禁) box."""

__version__ = "0.1.0"
