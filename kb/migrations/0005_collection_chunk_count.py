from django.db import migrations, models

# Each collection's chunk count, the sum of its documents' chunk_count, kept
# by statement-level triggers: whatever changes documents (ingestion,
# deletion, retention, the admin, SQL by hand) keeps it true, in the same
# transaction. The collections are locked in id order, so that ingestion
# batches over the same collections never deadlock; updates that change no
# count (progress, heartbeats) lock nothing.
CREATE_TRIGGERS = """
CREATE FUNCTION kb_document_chunk_count_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    collection_ids bigint[];
    changes bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(collection_id ORDER BY collection_id), array_agg(change ORDER BY collection_id)
          INTO collection_ids, changes
          FROM (SELECT collection_id, sum(chunk_count) AS change
                  FROM new_rows GROUP BY collection_id) per_collection
         WHERE change <> 0;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(collection_id ORDER BY collection_id), array_agg(change ORDER BY collection_id)
          INTO collection_ids, changes
          FROM (SELECT collection_id, -sum(chunk_count) AS change
                  FROM old_rows GROUP BY collection_id) per_collection
         WHERE change <> 0;
    ELSE
        SELECT array_agg(collection_id ORDER BY collection_id), array_agg(change ORDER BY collection_id)
          INTO collection_ids, changes
          FROM (SELECT collection_id, sum(change) AS change
                  FROM (SELECT collection_id, chunk_count::bigint AS change FROM new_rows
                        UNION ALL
                        SELECT collection_id, -chunk_count::bigint FROM old_rows) counted
                 GROUP BY collection_id) per_collection
         WHERE change <> 0;
    END IF;
    IF collection_ids IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM kb_collection WHERE id = ANY(collection_ids) ORDER BY id FOR NO KEY UPDATE;
    UPDATE kb_collection AS c
       SET chunk_count = greatest(c.chunk_count + d.change, 0)
      FROM unnest(collection_ids, changes) AS d(id, change)
     WHERE c.id = d.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER kb_document_chunks_inserted AFTER INSERT ON kb_document
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kb_document_chunk_count_changed();
CREATE TRIGGER kb_document_chunks_updated AFTER UPDATE ON kb_document
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kb_document_chunk_count_changed();
CREATE TRIGGER kb_document_chunks_deleted AFTER DELETE ON kb_document
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kb_document_chunk_count_changed();

UPDATE kb_collection AS c
   SET chunk_count = counted.total
  FROM (SELECT collection_id, sum(chunk_count) AS total
          FROM kb_document GROUP BY collection_id) counted
 WHERE c.id = counted.collection_id;
"""

DROP_TRIGGERS = """
DROP TRIGGER kb_document_chunks_inserted ON kb_document;
DROP TRIGGER kb_document_chunks_updated ON kb_document;
DROP TRIGGER kb_document_chunks_deleted ON kb_document;
DROP FUNCTION kb_document_chunk_count_changed();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("kb", "0004_embedding_index_retention"),
    ]

    operations = [
        migrations.AddField(
            model_name="collection",
            name="chunk_count",
            field=models.PositiveBigIntegerField(
                default=0, editable=False, verbose_name="chunks"
            ),
        ),
        migrations.RunSQL(CREATE_TRIGGERS, DROP_TRIGGERS),
    ]
