"""Carry the Process designers role as a permission, which its group holds."""

from __future__ import annotations

from django.db import migrations

GROUP = "Process designers"
CODENAME = "design_processes"
NAME = "Can design, test, deploy and run processes"


def grant(apps, schema_editor):
    alias = schema_editor.connection.alias
    content_type, _ = (
        apps.get_model("contenttypes", "ContentType")
        .objects.db_manager(alias)
        .get_or_create(app_label="orchestration", model="process")
    )
    # Django creates model permissions after all migrations ran: this one is needed now.
    permission, _ = (
        apps.get_model("auth", "Permission")
        .objects.db_manager(alias)
        .get_or_create(content_type=content_type, codename=CODENAME, defaults={"name": NAME})
    )
    group, _ = apps.get_model("auth", "Group").objects.db_manager(alias).get_or_create(name=GROUP)
    group.permissions.add(permission)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.using(schema_editor.connection.alias).filter(name=GROUP):
        group.permissions.remove(*group.permissions.filter(codename=CODENAME))


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("orchestration", "0005_run_key"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="process",
            options={
                "ordering": ["name", "pk"],
                "permissions": [(CODENAME, NAME)],
                "verbose_name_plural": "processes",
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
