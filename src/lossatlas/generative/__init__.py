"""Generative models: GAN losses, gradient penalties and the perceptual loss."""
