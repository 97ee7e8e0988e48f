"""Regression losses: point-wise errors, quantiles, percentages and likelihoods."""
