"""Pure code, no I/O: models, JPEG/EXIF header reading, GPS validation, checks."""
