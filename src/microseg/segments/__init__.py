"""Behavioural segments: stable identities across refits of the clustering models."""
