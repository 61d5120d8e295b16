"""The locked dependencies audited against a vendored snapshot of the PyPA Advisory Database (OSV)."""
