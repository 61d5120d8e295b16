"""Quality tickets (问题工单, issue 16): the tickets that get bad data fixed at its source.
See quality_stream/README.md (section "Quality tickets")."""
