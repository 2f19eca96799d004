"""Loggers for drivers: structlog bound to the component's name.

Drivers are the ground floor and import nothing from the daemon; whoever
runs them (``edged run``, a probe, a test) configures structlog once, and
every driver's lines then come out in the same format with ``component=``.
"""

from __future__ import annotations

from typing import Any

import structlog


def get_logger(component: str) -> Any:
    """Logger bound to one component; the name shows in every line it writes."""
    return structlog.get_logger(component=component)
