from typing import Any

from django.db import migrations, models

BATCH = 2_000


def mark_navigation(apps: Any, schema_editor: Any) -> None:
    """Chunks written before the flag existed: found by the same test."""
    from kb.text import looks_like_navigation

    chunk_model = apps.get_model("kb", "Chunk")
    last = 0
    while True:
        batch = list(
            chunk_model.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "text")[:BATCH]
        )
        if not batch:
            return
        found = [pk for pk, text in batch if looks_like_navigation(text)]
        if found:
            chunk_model.objects.filter(pk__in=found).update(is_navigation=True)
        last = batch[-1][0]


class Migration(migrations.Migration):
    dependencies = [
        ("kb", "0010_chunk_search_vector_storage_main"),
    ]

    operations = [
        migrations.AddField(
            model_name="chunk",
            name="is_navigation",
            field=models.BooleanField(
                db_default=False,
                default=False,
                verbose_name="table of contents or index",
            ),
        ),
        migrations.RunPython(mark_navigation, migrations.RunPython.noop),
    ]
