"""Shield-Lite's pure logic: advisory feeds read into typed values, a deployed stack's
inventory, matching by product and version, and the catalog fix an advisory allows.

No I/O here (no network, no files, no settings): crew/shield.py fetches feeds through
tools/feeds.py, reads state through tools/state.py and records through memory/shield.py.
"""
