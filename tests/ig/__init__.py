"""Tests of the IG console (a package so its module name differs from the e2e test of the same name)."""
