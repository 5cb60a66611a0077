"""Errors from the network and the file system, said so that an admin understands them.

``str(OSError)`` reads "[Errno -2] Name or service not known"; the estimate and pull pages
show what it means instead, and keep the technical text only in the log.
"""

from __future__ import annotations

import errno
import re
import socket

from django.utils.translation import gettext as _

_ERRNO_PREFIX = re.compile(r"^\s*\[Errno -?\d+\]\s*")


def readable_error(exc: BaseException) -> str:
    """A sentence for people about ``exc`` (a DownloadError, an OSError, or anything else)."""
    cause: BaseException | None = exc
    while cause is not None:  # the OSError under a DownloadError or an httpx error
        if isinstance(cause, socket.gaierror):
            return _("The server's name could not be found. Check the address, or whether this server can reach it.")
        if isinstance(cause, TimeoutError | socket.timeout):
            return _("The server did not answer in time. Try again later.")
        if isinstance(cause, ConnectionRefusedError):
            return _("The server refused the connection: nothing is listening at that address.")
        if isinstance(cause, OSError) and cause.errno is not None:
            if cause.errno in (errno.ENOENT, errno.ENOTDIR):
                return _("There is no such file.")
            if cause.errno in (errno.EACCES, errno.EPERM):
                return _("This server is not allowed to read that file.")
            if cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                return _("That network cannot be reached from this server.")
            if cause.errno == errno.ECONNRESET:
                return _("The connection was cut off. Try again.")
        cause = cause.__cause__ or cause.__context__
    text = _ERRNO_PREFIX.sub("", str(exc)).strip()
    if "Name or service not known" in text or "nodename nor servname" in text or "Temporary failure in name resolution" in text:
        return _("The server's name could not be found. Check the address, or whether this server can reach it.")
    if "Connection refused" in text:
        return _("The server refused the connection: nothing is listening at that address.")
    return text or _("It did not work, for a reason the server did not say.")
