"""The rules of grid governance, with no I/O: the case lifecycle and its stage limits, working
calendars, indicators, patrol rules, coordinates and geometry, privacy masking, access scopes,
time windows and screen selections, the wall's rules, the domain configuration and the clock.

Everything else builds on this package; it imports nothing of the project (an import-linter
contract in ``pyproject.toml`` keeps it so).
"""
