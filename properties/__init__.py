"""synack.properties: what must hold of the model (the catalogue arrives with the explorer)."""
