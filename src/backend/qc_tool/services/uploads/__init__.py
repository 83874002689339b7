"""Uploaded ZIPs of photos: looked into safely, unpacked, checked like a site, sorted."""
