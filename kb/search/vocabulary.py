"""Which of a query's possible words the searched collections hold: the
names jieba does not know are then cut as the index holds them
(``kb.text.segment_query``).

Only the searched collections' words count: a word held only by a collection
the user may not read changes nothing, as it changes nothing in the ranking.
"""

from __future__ import annotations

from django.db import connection

from accounts.models import ApiToken, Person
from kb.search.results import SearchFilters
from kb.search.statement import permitted_collections_sql, scope_sql

# Through the collection words' primary key (lexeme, collection).
INDEXED_WORDS_SQL = """
SELECT DISTINCT t.lexeme
FROM kb_collectionterm t
WHERE t.lexeme = ANY(%s::text[])
  AND t.chunks > 0
  AND t.collection_id IN (SELECT searched.id FROM ({scope}) AS searched)
"""


def indexed_words(
    *,
    user: Person,
    token: ApiToken | None,
    filters: SearchFilters,
    candidates: list[str],
) -> frozenset[str]:
    """The ``candidates`` that chunks of the collections ``user`` searches
    hold as words."""
    if not candidates:
        return frozenset()
    scope, params = scope_sql(*permitted_collections_sql(user, token), filters)
    with connection.cursor() as cursor:
        cursor.execute(INDEXED_WORDS_SQL.format(scope=scope), [candidates, *params])
        return frozenset(row[0] for row in cursor.fetchall())
