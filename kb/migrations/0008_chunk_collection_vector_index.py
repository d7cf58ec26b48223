from django.db import migrations, models

# The collection index carries each chunk's id and vector, so that the exact
# scan of a small permitted set reads only the index (see kb.models.Chunk).
# The new index is made before the old one goes, so lookups by collection
# always have one.


class Migration(migrations.Migration):
    dependencies = [
        ("kb", "0007_chunk_vector_storage_plain"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="chunk",
            index=models.Index(
                fields=["collection", "embedding_model"],
                include=["id", "document", "embedding"],
                name="chunk_collection_vector",
            ),
        ),
        migrations.RemoveIndex(
            model_name="chunk",
            name="chunk_collection_model",
        ),
    ]
