"""The use cases, by feature: scan, checks, uploads, logins, exports; jobs run them."""
