"""Tests of the patient's correction pages (a package: its module name differs from the e2e test)."""
