"""Static files storage: servestatic's compressed, hashed files, with the chat page's ES
modules pointing at each other's hashed names (``import ... from "./store.js"`` is rewritten
to ``./store.<hash>.js``), so a cached module never loads a newer or older neighbour."""

from __future__ import annotations

from servestatic.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
