"""The screens pushed over the main one: one per module."""
