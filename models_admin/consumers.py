"""The admin models socket: live pull progress and model-table changes, staff only.

With Redis the pull workers reach this socket through the channel layer. In embedded mode
the layer is in-memory, so events from the Celery worker process never arrive here; the
consumer then polls the pull rows once a second and sends what changed, which is also why
progress is stored on the row and not only sent.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer
from django.utils import timezone

from webio import layer_watch
from webio.sockets import SafeJsonConsumer

from .models import Pull
from .progress import PullEvent, admin_group, pull_event
from .selectors import pulls_for_page

POLL_INTERVAL = 1.0


@database_sync_to_async
def _snapshot() -> list[PullEvent]:
    return [pull_event(pull) for pull in pulls_for_page()]


@database_sync_to_async
def _changed_since(since: datetime) -> list[Pull]:
    return list(Pull.objects.filter(updated_at__gte=since).order_by("updated_at"))


class ModelsAdminConsumer(SafeJsonConsumer):
    poller: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        user = self.scope["user"]
        if not (user.is_authenticated and user.is_staff and user.is_active):
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(admin_group(), self.channel_name)
        await self.accept()
        started = timezone.now()
        # Joined first, read second: nothing that happens in between is missed.
        for event in await _snapshot():
            await self.send_json(event)
        if isinstance(self.channel_layer, InMemoryChannelLayer):
            self.poller = asyncio.create_task(self._poll(started))
        else:
            layer_watch.watch(self)

    async def resync(self) -> None:
        """Redis came back: pull events published while it was down are lost, the rows are not."""
        for event in await _snapshot():
            await self.send_json(event)

    async def disconnect(self, code: int) -> None:
        layer_watch.unwatch(self)
        if self.poller is not None:
            self.poller.cancel()
        try:
            await self.channel_layer.group_discard(admin_group(), self.channel_name)
        except Exception:  # Redis down: the subscription went with it
            pass

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        pass  # the page changes things through forms (CSRF-checked views), not the socket

    async def admin_event(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])

    async def _poll(self, since: datetime) -> None:
        sent: dict[int, datetime] = {}
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            checked = timezone.now()
            for pull in await _changed_since(since):
                if sent.get(pull.id) != pull.updated_at:
                    sent[pull.id] = pull.updated_at
                    await self.send_json(pull_event(pull))
            # Overlap by a second: a row written just before ``checked`` by a slow commit.
            since = checked - timedelta(seconds=POLL_INTERVAL)
