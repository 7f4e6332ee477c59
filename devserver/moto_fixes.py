"""Corrections to moto, applied wherever Terapi runs on it (the dev server and the tests).

moto 5.2's `UpdateSecretVersionStage` moves the AWSCURRENT label but not the secret's default
version pointer, which its `GetSecretValue` (without a stage) and `PutSecretValue` read. After
Terapi rolls back a failed credentials write, moto would then serve the rolled-back value and
label two versions current; AWS does neither. The fix keeps the pointer on AWSCURRENT.
"""

from __future__ import annotations

from typing import Any

_applied = False


def apply() -> None:
    """Patch moto once per process; safe to call repeatedly."""
    global _applied
    if _applied:
        return
    from moto.secretsmanager.models import SecretsManagerBackend

    original = SecretsManagerBackend.update_secret_version_stage

    def update_secret_version_stage(self: Any, secret_id: str, version_stage: str,
                                    remove_from_version_id: str,
                                    move_to_version_id: str) -> tuple[str, str]:
        result = original(self, secret_id, version_stage, remove_from_version_id,
                          move_to_version_id)
        if version_stage == "AWSCURRENT" and move_to_version_id:
            self.secrets[secret_id].default_version_id = move_to_version_id
        return result

    SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage
    _applied = True
