"""Binary, multi-label and multi-class classification losses."""
