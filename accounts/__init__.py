"""Accounts: users, groups (teams and departments), hashed API tokens and the
append-only audit log. Knows nothing of documents."""
