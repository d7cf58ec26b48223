import django.db.models.deletion
from django.db import migrations, models

# Each collection's document frequencies (how many of its chunks hold each
# full-text word), kept by statement-level triggers on kb_chunk: whatever
# changes chunks (ingestion, deletion, retention, SQL by hand) keeps them true
# in the same transaction. Rows are locked in key order (word, collection):
# inserts through a sorted upsert, other changes by locking the rows they
# touch first, so changes to the same collection never deadlock.
CREATE_TRIGGERS = """
CREATE FUNCTION kb_collection_terms_add(lexemes text[], collection_ids bigint[], changes bigint[])
RETURNS void LANGUAGE plpgsql AS $$
-- One change per (word, collection), never 0.
BEGIN
    PERFORM 1
       FROM kb_collectionterm t
       JOIN unnest(lexemes, collection_ids) AS given(lexeme, collection_id)
         ON t.lexeme = given.lexeme AND t.collection_id = given.collection_id
      ORDER BY t.lexeme, t.collection_id
        FOR UPDATE OF t;
    INSERT INTO kb_collectionterm AS t (lexeme, collection_id, chunks)
    SELECT lexeme, collection_id, change
      FROM unnest(lexemes, collection_ids, changes) AS given(lexeme, collection_id, change)
     WHERE change > 0
     ORDER BY lexeme, collection_id
        ON CONFLICT (lexeme, collection_id) DO UPDATE SET chunks = t.chunks + excluded.chunks;
    WITH removed AS (
        SELECT lexeme, collection_id, -change AS chunks
          FROM unnest(lexemes, collection_ids, changes) AS given(lexeme, collection_id, change)
         WHERE change < 0
    ),
    gone AS (
        DELETE FROM kb_collectionterm t USING removed r
         WHERE t.lexeme = r.lexeme AND t.collection_id = r.collection_id AND t.chunks <= r.chunks
    )
    UPDATE kb_collectionterm t SET chunks = t.chunks - r.chunks
      FROM removed r
     WHERE t.lexeme = r.lexeme AND t.collection_id = r.collection_id AND t.chunks > r.chunks;
END
$$;

CREATE FUNCTION kb_chunk_terms_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- Straight into the table (an ingestion batch only adds), sorted.
        INSERT INTO kb_collectionterm AS t (lexeme, collection_id, chunks)
        SELECT word.lexeme, n.collection_id, count(*)
          FROM new_rows n CROSS JOIN LATERAL unnest(tsvector_to_array(n.search_vector)) AS word(lexeme)
         GROUP BY word.lexeme, n.collection_id
         ORDER BY word.lexeme, n.collection_id
            ON CONFLICT (lexeme, collection_id) DO UPDATE SET chunks = t.chunks + excluded.chunks;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM kb_collection_terms_add(array_agg(lexeme), array_agg(collection_id), array_agg(change))
           FROM (SELECT word.lexeme, o.collection_id, -count(*) AS change
                   FROM old_rows o CROSS JOIN LATERAL unnest(tsvector_to_array(o.search_vector)) AS word(lexeme)
                  GROUP BY word.lexeme, o.collection_id) counted;
    ELSE
        -- Only rows whose words or collection changed (re-embedding updates
        -- every chunk and changes neither).
        PERFORM kb_collection_terms_add(array_agg(lexeme), array_agg(collection_id), array_agg(change))
           FROM (SELECT word.lexeme, side.collection_id, sum(side.change)::bigint AS change
                   FROM new_rows n
                   JOIN old_rows o ON o.id = n.id
                  CROSS JOIN LATERAL (VALUES (n.collection_id, n.search_vector, 1),
                                             (o.collection_id, o.search_vector, -1))
                        AS side(collection_id, search_vector, change)
                  CROSS JOIN LATERAL unnest(tsvector_to_array(side.search_vector)) AS word(lexeme)
                  WHERE n.search_vector IS DISTINCT FROM o.search_vector
                     OR n.collection_id <> o.collection_id
                  GROUP BY word.lexeme, side.collection_id
                 HAVING sum(side.change) <> 0) counted;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER kb_chunk_terms_inserted AFTER INSERT ON kb_chunk
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kb_chunk_terms_changed();
CREATE TRIGGER kb_chunk_terms_updated AFTER UPDATE ON kb_chunk
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kb_chunk_terms_changed();
CREATE TRIGGER kb_chunk_terms_deleted AFTER DELETE ON kb_chunk
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION kb_chunk_terms_changed();

INSERT INTO kb_collectionterm (lexeme, collection_id, chunks)
SELECT word.lexeme, c.collection_id, count(*)
  FROM kb_chunk c CROSS JOIN LATERAL unnest(tsvector_to_array(c.search_vector)) AS word(lexeme)
 GROUP BY word.lexeme, c.collection_id;
"""

DROP_TRIGGERS = """
DROP TRIGGER kb_chunk_terms_inserted ON kb_chunk;
DROP TRIGGER kb_chunk_terms_updated ON kb_chunk;
DROP TRIGGER kb_chunk_terms_deleted ON kb_chunk;
DROP FUNCTION kb_chunk_terms_changed();
DROP FUNCTION kb_collection_terms_add(text[], bigint[], bigint[]);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("kb", "0008_chunk_collection_vector_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="CollectionTerm",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "lexeme",
                        "collection",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("lexeme", models.TextField(verbose_name="word")),
                ("chunks", models.PositiveIntegerField(verbose_name="chunks")),
                (
                    "collection",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="kb.collection",
                        verbose_name="collection",
                    ),
                ),
            ],
            options={
                "verbose_name": "collection word",
                "verbose_name_plural": "collection words",
            },
        ),
        migrations.RunSQL(CREATE_TRIGGERS, DROP_TRIGGERS),
    ]
