"""The scan of a site: list it, deal its images to a pool of connections, parse their EXIF."""
