from django.db import migrations, models

# Each collection's chunk count, the sum of its documents' chunk_count, kept
# by statement-level triggers: whatever changes documents (ingestion,
# deletion, retention, the admin, SQL by hand) keeps it true, in the same
# transaction. Each trigger hands its rows' changes to one function, which
# sums them per collection and locks the collections in id order, so that
# ingestion batches over the same collections never deadlock; updates that
# change no count (progress, heartbeats) lock nothing.
CREATE_TRIGGERS = """
CREATE FUNCTION kb_collection_chunks_add(collection_ids bigint[], changes bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    changed_ids bigint[];
    totals bigint[];
BEGIN
    SELECT array_agg(id ORDER BY id), array_agg(total ORDER BY id)
      INTO changed_ids, totals
      FROM (SELECT id, sum(change) AS total
              FROM unnest(collection_ids, changes) AS given(id, change)
             GROUP BY id) per_collection
     WHERE total <> 0;
    IF changed_ids IS NULL THEN
        RETURN;
    END IF;
    PERFORM 1 FROM kb_collection WHERE id = ANY(changed_ids) ORDER BY id FOR NO KEY UPDATE;
    UPDATE kb_collection AS c
       SET chunk_count = greatest(c.chunk_count + d.total, 0)
      FROM unnest(changed_ids, totals) AS d(id, total)
     WHERE c.id = d.id;
END
$$;

CREATE FUNCTION kb_document_chunk_count_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM kb_collection_chunks_add(array_agg(collection_id), array_agg(chunk_count::bigint))
           FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM kb_collection_chunks_add(array_agg(collection_id), array_agg(-chunk_count::bigint))
           FROM old_rows;
    ELSE
        PERFORM kb_collection_chunks_add(array_agg(collection_id), array_agg(change))
           FROM (SELECT collection_id, chunk_count::bigint AS change FROM new_rows
                 UNION ALL
                 SELECT collection_id, -chunk_count::bigint FROM old_rows) counted;
    END IF;
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
DROP FUNCTION kb_collection_chunks_add(bigint[], bigint[]);
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
