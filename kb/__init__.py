"""Knowledge base: collections, role grants, documents and chunks; the one
permission entry point; retrieval selectors. Never imports ingest or inference."""
