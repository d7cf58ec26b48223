"""Inference: the OpenAI-compatible LLM client, prompts, the answer service,
the permission-scoped answer cache, conversations, query log and feedback."""
