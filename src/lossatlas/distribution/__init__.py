"""Divergences between probability distributions."""
