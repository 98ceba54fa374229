"""Deploy a draft as an immutable, numbered version; roll back; rotate the webhook token."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.db import transaction
from django.db.models import Max

from orchestration.models import Process
from orchestration.processes.services import (
    process_copy_contents,
    step_refresh_problems,
    with_suffix,
)

DEPLOY_INCOMPLETE = "Deploy refused: complete these steps first: {steps}."
DEPLOY_EMPTY = "Deploy refused: the process has no steps."


class DeployRefused(Exception):
    pass


@transaction.atomic
def process_deploy(*, process: Process, actor) -> Process:
    """Freeze the draft into version N+1 and make it live."""
    process = Process.objects.select_for_update().get(pk=process.pk)
    step_refresh_problems(process=process)
    steps = list(process.steps.order_by("position", "pk"))
    if not steps:
        raise DeployRefused(DEPLOY_EMPTY)
    incomplete = [s for s in steps if s.problems]
    if incomplete:
        listed = "; ".join(f"{s.name} ({s.problems[0]})" for s in incomplete)
        raise DeployRefused(DEPLOY_INCOMPLETE.format(steps=listed))
    number = (process.versions.aggregate(n=Max("version_number"))["n"] or 0) + 1
    version = Process.objects.create(
        name=with_suffix(process.name, f" v{number}"),
        description=process.description,
        test_input=process.test_input,
        state=Process.State.DEPLOYED,
        created_by=actor,
        version_of=process,
        version_number=number,
    )
    process_copy_contents(source=process, target=version)
    process.live_version = version
    process.state = Process.State.DEPLOYED
    process.save(update_fields=["live_version", "state", "updated_at"])
    return version


def process_rollback(*, process: Process, version: Process) -> None:
    """Make an earlier version live again."""
    if version.version_of_id != process.pk:
        raise DeployRefused("That version belongs to another process.")
    process.live_version = version
    process.save(update_fields=["live_version", "updated_at"])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def webhook_token_rotate(*, process: Process) -> str:
    """Issue a new webhook token (the old one stops working) and return it, once."""
    token = secrets.token_urlsafe(32)
    process.webhook_token_hash = _digest(token)
    process.save(update_fields=["webhook_token_hash", "updated_at"])
    return token


def webhook_token_matches(process: Process, token: str) -> bool:
    if not process.webhook_token_hash or not token:
        return False
    return hmac.compare_digest(process.webhook_token_hash, _digest(token))
