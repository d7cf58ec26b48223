"""Built-in evaluation: a question set run through the real ask path, scored.

``sets`` reads question sets, ``metrics`` scores answers and aggregates a
run, ``runner`` runs one, ``compare`` sets two runs side by side.
"""
