"""Template filters of the admin models page."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext_lazy as _

from inference.fit import format_bytes

register = template.Library()


@register.filter
def bytes_iec(size: int | None) -> str:
    """Bytes the way the estimate and the page's script write them: 93.8 MiB, 1.2 GiB."""
    return "—" if size is None else format_bytes(int(size))


# What a model can do, as Ollama names it (the API keeps these names; people read the labels).
_CAPABILITIES = {
    "completion": _("chat"),
    "embedding": _("embeddings"),
    "vision": _("images"),
    "tools": _("tools"),
}


@register.filter
def capability_label(capability: str) -> str:
    return str(_CAPABILITIES.get(capability, capability))
