"""Project wiring: settings, URLs, ASGI and Celery apps.

The brief fixes this folder's name, which shadows the standard library's ``platform``
module whenever the project root comes first on ``sys.path`` (manage.py, ``python -m``).
Libraries (uuid, celery, httpx, ...) call ``platform.system()`` and friends, so this
package runs the standard module's source in its own namespace and is a superset of it.
"""

import os as _os
import sysconfig as _sysconfig

_STDLIB_PLATFORM = _os.path.join(_sysconfig.get_path("stdlib"), "platform.py")
with open(_STDLIB_PLATFORM, encoding="utf-8") as _source:
    exec(compile(_source.read(), _STDLIB_PLATFORM, "exec"))  # noqa: S102

# The Celery app is not imported here (Django's usual recipe): the standard library imports
# ``platform`` early (uuid does), and Celery imports uuid. Apps load it in ``ready()``.
