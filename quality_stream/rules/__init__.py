"""Rule kinds, one module per family; importing a module registers its kinds."""
