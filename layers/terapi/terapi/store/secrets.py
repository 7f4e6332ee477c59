"""Secrets Manager store: one secret per connection's credentials and per OAuth client secret.

Secret names are `<prefix>/<kind>/<uuid>` and never embed user input (connection ids may hold any
character); tags carry the ids, hashed when a tag could not hold them. Values are JSON objects.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

from terapi.aws import client
from terapi.settings import get_settings

_TAG_SAFE = re.compile(r"^[\w .:/=+\-@]{1,256}$")


def tag_value(text: str) -> str:
    """A tag value that identifies `text`: itself when tags allow it, else a SHA-256 digest."""
    if _TAG_SAFE.match(text):
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


class SecretStore:
    """Create, read, version and delete Terapi's secrets."""

    def __init__(self) -> None:
        self._client = client("secretsmanager")

    def create(self, kind: str, value: dict[str, Any], tags: dict[str, str]) -> tuple[str, str]:
        """Create a secret holding `value`; return its ARN and version id."""
        version_id = str(uuid.uuid4())
        name = f"{get_settings().secret_prefix}/{kind}/{uuid.uuid4()}"
        tag_list = [{"Key": "terapi:kind", "Value": kind}]
        tag_list += [{"Key": f"terapi:{k}", "Value": tag_value(v)} for k, v in tags.items()]
        reply = self._client.create_secret(
            Name=name,
            SecretString=json.dumps(value),
            ClientRequestToken=version_id,
            Tags=tag_list,
        )
        return reply["ARN"], version_id

    def read(self, arn: str) -> dict[str, Any]:
        """Read the current (AWSCURRENT) value of a secret."""
        reply = self._client.get_secret_value(SecretId=arn)
        return json.loads(reply["SecretString"])

    def replace(self, arn: str, value: dict[str, Any]) -> str:
        """Store a new current value; the previous one stays as AWSPREVIOUS. Returns the version."""
        version_id = str(uuid.uuid4())
        self._client.put_secret_value(
            SecretId=arn, SecretString=json.dumps(value), ClientRequestToken=version_id
        )
        return version_id

    def restore_version(self, arn: str, previous_version: str, failed_version: str) -> None:
        """Make `previous_version` current again after a write that could not be completed."""
        self._client.update_secret_version_stage(
            SecretId=arn,
            VersionStage="AWSCURRENT",
            MoveToVersionId=previous_version,
            RemoveFromVersionId=failed_version,
        )

    def delete(self, arn: str) -> None:
        """Schedule deletion with the configured recovery window (0 deletes at once).

        Idempotent: a secret that is already gone or already scheduled for deletion is left as
        it is, so an interrupted deletion can be repeated.
        """
        days = get_settings().secret_recovery_days
        options: dict[str, Any] = (
            {"ForceDeleteWithoutRecovery": True} if days <= 0 else {"RecoveryWindowInDays": days})
        try:
            self._client.delete_secret(SecretId=arn, **options)
        except self._client.exceptions.ResourceNotFoundException:
            return
        except self._client.exceptions.InvalidRequestException:
            if "DeletedDate" not in self._client.describe_secret(SecretId=arn):
                raise

    def undelete(self, arn: str) -> None:
        """Cancel a scheduled deletion (used to roll back a delete that could not complete)."""
        self._client.restore_secret(SecretId=arn)

    def delete_quietly(self, arn: str) -> bool:
        """Delete a secret created by a write that failed; report whether it worked."""
        try:
            self._client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
        except Exception:  # noqa: BLE001 - the caller logs and reports the original failure
            return False
        return True
