"""Semantic segmentation losses: Dice, Jaccard, Tversky, self-adjusting Dice, Lovász, compounds."""
