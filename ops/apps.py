from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OpsConfig(AppConfig):
    """Operations: metrics, dashboard, alerts, backups, retention, model
    changes and encryption at rest. Depends on every other app; none on it."""

    name = "ops"
    verbose_name = _("Operations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from pathlib import Path

        from django.core.files.storage import default_storage

        from kb.crypto import canary_check, keyring

        # A missing, malformed or wrong key stops the process at start-up with
        # the reason, instead of failing on the first upload or download.
        canary_check(Path(default_storage.path("")), keyring())
