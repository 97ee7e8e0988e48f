"""Sequence losses: connectionist temporal classification."""
