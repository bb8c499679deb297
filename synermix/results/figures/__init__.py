"""Paper figures: each writes outputs/figures/figN.png and figN.csv (the exact numbers plotted)."""
