from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AuditsConfig(AppConfig):
    name = "audits"
    verbose_name = "Proof of reserve"
    default = True
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from audits.signals import create_default_schedules

        post_migrate.connect(create_default_schedules, sender=self)


class PorappAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "audits.admin_site.PorappAdminSite"
