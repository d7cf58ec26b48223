import django.db.models.deletion
from django.db import migrations, models

# One index on (collection, embedding model) instead of two identical ones on
# the collection (the foreign key's and chunk_collection); the document's
# foreign key index goes too, as the unique (document, ordinal) leads with
# it. The new index is made before the old ones go, so lookups by collection
# always have one.


class Migration(migrations.Migration):
    dependencies = [
        ("kb", "0005_collection_chunk_count"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="chunk",
            index=models.Index(
                fields=["collection", "embedding_model"],
                name="chunk_collection_model",
            ),
        ),
        migrations.RemoveIndex(
            model_name="chunk",
            name="chunk_collection",
        ),
        migrations.AlterField(
            model_name="chunk",
            name="collection",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="kb.collection",
                verbose_name="collection",
            ),
        ),
        migrations.AlterField(
            model_name="chunk",
            name="document",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="chunks",
                to="kb.document",
                verbose_name="document",
            ),
        ),
    ]
