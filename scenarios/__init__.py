"""The scenario library: one module per area. Modules import their framework inside each scenario function."""
