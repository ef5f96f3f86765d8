"""GDPR (AVG) data export and erasure, extensible by the apps that hold member data.

`members` knows only its own tables; loyalty, rewards and segmentation register an exporter
(their part of the member's data, JSON-ready) and, where they hold personal data, an eraser,
in their AppConfig.ready().
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Exporter = Callable[[Any], Any]
Eraser = Callable[[Any], None]

_exporters: dict[str, Exporter] = {}
_erasers: list[Eraser] = []


def register_exporter(name: str, exporter: Exporter) -> None:
    _exporters[name] = exporter


def register_eraser(eraser: Eraser) -> None:
    if eraser not in _erasers:
        _erasers.append(eraser)


def exporters() -> dict[str, Exporter]:
    return dict(_exporters)


def erasers() -> list[Eraser]:
    return list(_erasers)
