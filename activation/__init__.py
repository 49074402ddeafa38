"""Activation: scored lists published as audience releases to files, the warehouse and the
CRM database, with suppression, holdout groups and a diff against the previous release."""
