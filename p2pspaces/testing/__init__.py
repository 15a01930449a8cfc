"""Support that the tests and the benchmark scripts share (real browsers to drive, and so on).

Nothing here runs in a node; it is kept in the package so that ``scripts/`` need not import
test modules (issue 20).
"""
