"""Ranking, embedding and metric-learning losses."""
