"""The web app manifest (/manifest.webmanifest) that makes the platform installable: the chat
is what opens from the home screen. base.html links it on every page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.templatetags.static import static
from django.utils.translation import get_language, get_language_bidi, gettext
from django.views.decorators.http import require_safe

# The light theme's page background (app.css --bg, theme.js THEME_COLORS.light): the
# splash screen and the title bar of the installed app before the page has drawn itself.
THEME_COLOR = "#ffffff"
ICONS = (
    ("img/icon-192.png", 192, "any"),
    ("img/icon-512.png", 512, "any"),
    ("img/icon-maskable-512.png", 512, "maskable"),
)


@require_safe
def web_manifest(request: HttpRequest) -> HttpResponse:
    manifest = {
        "id": "/",
        "name": gettext("Private LLM"),
        "short_name": gettext("Private LLM"),
        "description": gettext("Chat with language models that run on your own server."),
        "lang": get_language(),
        "dir": "rtl" if get_language_bidi() else "ltr",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "theme_color": THEME_COLOR,
        "background_color": THEME_COLOR,
        "icons": [
            {"src": static(path), "sizes": f"{size}x{size}", "type": "image/png", "purpose": purpose}
            for path, size, purpose in ICONS
        ],
    }
    return JsonResponse(manifest, content_type="application/manifest+json")
