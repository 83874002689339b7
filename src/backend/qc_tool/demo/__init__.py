"""Demo and test support shipped in the package: synthetic DJI-like images, sites and servers."""
