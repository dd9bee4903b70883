import pytest

from phr.nhs_number import check_digit, is_valid_nhs_number


@pytest.mark.parametrize("value", ["9434765919", "943 476 5919", "9990000018"])
def test_it_accepts_numbers_whose_check_digit_matches(value):
    assert is_valid_nhs_number(value)


@pytest.mark.parametrize("value", ["9434765918", "943476591", "94347659190", "abcdefghij", "", "9434765910"])
def test_it_rejects_wrong_check_digits_lengths_and_letters(value):
    assert not is_valid_nhs_number(value)


def test_a_remainder_of_ten_has_no_valid_number():
    # 10*1 + 9*0 + ... chosen so that 11 - (sum % 11) == 10
    candidates = [f"{n:09d}" for n in range(999000000, 999000200)]
    assert any(check_digit(c) is None for c in candidates)
    assert all(check_digit(c) is None or 0 <= check_digit(c) <= 9 for c in candidates)
