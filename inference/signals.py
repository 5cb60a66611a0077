"""Signals of the engine layer, for apps above it (the engines import no app)."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent with ``spec`` (a ``ModelSpec``), from the loading thread, just before the embedded
#: engine loads a model in this process. The load holds Python's GIL until it is done, so no
#: other thread of the process runs meanwhile (seconds for a small model read from a cold
#: disk): a receiver does now what must not wait that long.
model_loading = Signal()
