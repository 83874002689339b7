"""Site centre, distances and the outside-the-site flag."""

from __future__ import annotations

import pytest
from qc_tool.domain.checks.geo import haversine_m, outside_site_flags, position_outcome, site_centre


def test_haversine_matches_known_distances() -> None:
    assert haversine_m(10.0, 20.0, 10.0, 20.0) == 0.0
    assert haversine_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(111_195, rel=1e-4)
    # Paris to London, about 343.9 km on the sphere
    assert haversine_m(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343_900, rel=3e-3)


def test_the_site_centre_is_the_median_so_stray_photos_do_not_move_it() -> None:
    points = [(45.0, 5.0), (45.0001, 5.0001), (45.0002, 5.0002), (10.0, 100.0), None]
    assert site_centre(points) == pytest.approx((45.00005, 5.00015))
    assert site_centre([None, None]) is None


def test_the_centre_of_a_site_on_the_180th_meridian_stays_there() -> None:
    centre = site_centre([(-17.0, 179.9999), (-17.0, -179.9999), (-17.0, 179.9998)])
    assert centre is not None
    lat, lon = centre
    assert lat == -17.0 and lon == pytest.approx(179.9999)


def test_photos_farther_than_the_limit_are_outside() -> None:
    points = [(45.0, 5.0), (45.0, 5.0), (45.001, 5.0), (45.1, 5.0), None]
    assert outside_site_flags(points, 500.0) == [False, False, False, True, False]
    assert outside_site_flags([None], 500.0) == [False]


def test_position_messages_give_the_distance_and_the_limit() -> None:
    far = position_outcome((45.1, 5.0), (45.0, 5.0), 500.0)
    assert not far.ok
    assert (
        far.message == "Outside the site: 11120 m from the site's median position (maximum 500 m)"
    )
    near = position_outcome((45.0, 5.0), (45.0, 5.0), 500.0)
    assert near.ok and near.value == 0.0
    unknown = position_outcome(None, (45.0, 5.0), 500.0)
    assert unknown.ok and not unknown.judged
