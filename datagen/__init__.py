"""A seeded generator of a realistic demo CRM with planted, documented structure."""
