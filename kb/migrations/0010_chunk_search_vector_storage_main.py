from django.db import migrations

# Chunks' full-text vectors stay in their rows (storage MAIN), their texts go
# to the TOAST table first when a row passes 2 KB. The lexical half tests and
# ranks each candidate's full-text vector with every query word, and each of
# those reads fetched it from the TOAST table again: at a million chunks with
# 1,200-character texts, 1 GB of full-text vectors had been moved out. A text
# is read only for the page of hits. Only rows written from now on follow it
# (SET STORAGE rewrites nothing; VACUUM FULL kb_chunk rewrites the rest).


class Migration(migrations.Migration):
    dependencies = [
        ("kb", "0009_collection_terms"),
    ]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE kb_chunk ALTER COLUMN search_vector SET STORAGE MAIN",
            "ALTER TABLE kb_chunk ALTER COLUMN search_vector SET STORAGE EXTENDED",
        ),
    ]
