"""Tests of our own server's options and defences (the suite proper tests any server)."""
