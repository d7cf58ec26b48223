"""Ingestion: file checks, parsing (unstructured), structure-aware chunking,
embedding (sentence-transformers), Celery tasks, job progress and the reaper
for stalled jobs. Never needs the LLM."""
