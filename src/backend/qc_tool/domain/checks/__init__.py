"""Photo validation checks: pure functions on bytes, numpy arrays and plain data.

Per photo (in a worker process): ``analyse_pixels`` (one reduced decode for focus, exposure and
pHash), ``measure_integrity``/``check_integrity`` on whole files, ``find_mpf_preview`` and
``parse_dji_xmp`` on headers. Per site: ``judge_site`` (or the pieces it combines:
``relative_blur_flags``, ``find_duplicates``, ``site_centre``). docs/checks.md has the details.

Import each name from its own module (``qc_tool.domain.checks.blur``...): this package imports
nothing, so a GPS scan or the CLI that needs ``checks.result`` or ``checks.rules`` does not pay
for numpy and Pillow at start-up.
"""
