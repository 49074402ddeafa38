"""Source connectors and the contract-checked load into the warehouse `raw` schema."""
