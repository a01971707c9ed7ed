"""What the tests share: message builders, fakes of the code's ports, the servers' handles.

Importable from any test as ``support`` (pytest's ``pythonpath`` and mypy's ``mypy_path`` both
name ``tests``).
"""
