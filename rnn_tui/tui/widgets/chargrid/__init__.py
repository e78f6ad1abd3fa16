"""Character grids that several screens use: the confidence-coloured text, the activation-coloured text, the legend."""
