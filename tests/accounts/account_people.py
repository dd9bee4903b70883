"""Fixed values the account tests share (imported by conftest and the tests); the
password and the TOTP secret are every persona's (tests/personas.py)."""

from datetime import date

ADA_NHS_NUMBER = "9434765919"
ADA_BORN = date(1984, 3, 15)
