"""Rendering only: terminal text and tables, and file exports of result tables.

Nothing here computes a result; the front ends hand frames and strings to these helpers so that
every command shows and writes user data the same safe way.
"""
