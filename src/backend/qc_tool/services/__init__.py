"""The use cases: scan a site, run jobs, hold sessions."""
