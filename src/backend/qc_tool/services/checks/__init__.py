"""The photo checks: read each photo's pixels, measure them on other cores, judge the site."""
