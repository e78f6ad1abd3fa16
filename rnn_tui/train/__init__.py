"""The trainer: the PyTorch side. Imported only in a process that trains (headless, torchrun, or the app's child)."""
