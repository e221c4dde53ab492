"""Yima's pure verifiable core.

Bytes and values in, values out or a typed error (see :mod:`ledger.errors`). No database,
clock, randomness, network or web framework is used here; a test enforces it.
"""
