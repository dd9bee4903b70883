"""Fixed values the account tests share (imported by conftest and the tests)."""

from datetime import date

PASSWORD = "a-long-and-unguessable-phrase"
TOTP_SECRET = "NBSWY3DPORVXA4TPMFZWI3LPNRXXEYLM"
ADA_NHS_NUMBER = "9434765919"
ADA_BORN = date(1984, 3, 15)
