"""Per-window quality metrics in ClickHouse (issue 16), written by the runners, read by scorecards
and reports (`schema.py`: the tables, `writer.py`: the runner's batched writer, `query.py`: reads)."""
