"""A small, healthy end-to-end suite: every test passes on the first try."""

import pytest

PRICES = {"apple": 3, "pear": 4}


@pytest.fixture
def cart():
    return []


def test_add_to_cart(cart):
    cart.append("apple")
    assert cart == ["apple"]


def test_total(cart):
    cart.extend(["apple", "pear"])
    assert sum(PRICES[item] for item in cart) == 7


@pytest.mark.parametrize("item", sorted(PRICES))
def test_price_is_positive(item):
    assert PRICES[item] > 0


@pytest.mark.skip(reason="payments are tested in staging")
def test_payment():
    pass
