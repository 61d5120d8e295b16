"""Sensitive-data detection (issue 17): which catalogue fields hold personal or sensitive data.

from streams.sensitive import detect_field, KINDS
finding = detect_field("id_number", samples)   # None, or the kind, match ratio, proposal, masked examples
"""

from streams.sensitive.detect import PROPOSALS, Finding, detect_field
from streams.sensitive.validators import KINDS

__all__ = ["KINDS", "PROPOSALS", "Finding", "detect_field"]
