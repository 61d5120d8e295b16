"""Column profiles computed in ClickHouse SQL, and the rules they suggest (issue 16).

profile = profile_table(client, "db.table" or "table", columns=None)   # one aggregate query
rules = suggest_rules(profile)                                           # RuleSet configs
"""

from quality_stream.profiling.profile import profile_table
from quality_stream.profiling.suggest import suggest_rules

__all__ = ["profile_table", "suggest_rules"]
