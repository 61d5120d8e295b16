"""Pipeline documents over the API: validation, versioned store, diffs, graphs, secret redaction."""
