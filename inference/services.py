from __future__ import annotations

from .models import UsageRecord, UsageSource


def usage_record(*, user_id: int, model_name: str, source: UsageSource, prompt_tokens: int, completion_tokens: int) -> None:
    UsageRecord.objects.create(
        user_id=user_id,
        model_name=model_name,
        source=source,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )
