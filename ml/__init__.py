"""Models: customer lifetime value now; target-customer trees, rules and scoring next."""
