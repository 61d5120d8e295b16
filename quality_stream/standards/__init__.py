"""Chinese national standards (GB) validators, vectorised over polars expressions."""
