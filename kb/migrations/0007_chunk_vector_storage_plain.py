from django.db import migrations

from kb.models import vector_storage

# Chunk vectors stay in their rows (see kb.models.INLINE_VECTOR_MAX_DIMENSIONS).
# Only rows written from now on follow it: SET STORAGE rewrites nothing.


def _embedding_dimensions(cursor) -> int:
    cursor.execute(
        "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'kb_chunk'::regclass "
        "AND attname = 'embedding' AND NOT attisdropped"
    )
    return int(cursor.fetchone()[0])


def store_vectors_inline(apps, schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        storage = vector_storage(_embedding_dimensions(cursor))
        cursor.execute(
            f"ALTER TABLE kb_chunk ALTER COLUMN embedding SET STORAGE {storage}"
        )


def store_vectors_as_before(apps, schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE kb_chunk ALTER COLUMN embedding SET STORAGE EXTERNAL"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("kb", "0006_chunk_collection_model_index"),
    ]

    operations = [
        migrations.RunPython(store_vectors_inline, store_vectors_as_before),
    ]
