"""The lesson's widgets: the post's figure (time steps as columns), the weights as heat maps, one step's
arithmetic or gates, and the loss curve."""
