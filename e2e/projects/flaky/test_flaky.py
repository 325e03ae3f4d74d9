"""A suite with one test that fails on its first attempt in a fresh directory."""

import pathlib


def test_stable():
    assert True


def test_warms_up_a_cache():
    marker = pathlib.Path(__file__).with_name(".warm")
    if not marker.exists():
        marker.write_text("warm")
        raise TimeoutError("cache at 127.0.0.1:6380 not ready after 0.25s")
