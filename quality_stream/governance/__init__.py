"""Data standards management (issue 16): see README.md."""
