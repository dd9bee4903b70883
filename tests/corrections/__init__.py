"""Tests of the patient's correction pages (a package so its module name differs from the e2e test of the same name)."""
