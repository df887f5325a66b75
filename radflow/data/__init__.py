"""Labels, splits and the training dataset over clean arrays."""
