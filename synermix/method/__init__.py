"""SynerMix itself: Eq. 1-2 (intra.py), the inter-class maths (inter.py), the loss (Eq. 5), the sampler, the mixers."""
