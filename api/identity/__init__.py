"""Identity: users, groups, roles, API keys, password hashing, JWT tokens (see api/README.md)."""
