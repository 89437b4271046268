#!/usr/bin/env python3
"""conductbot entry point: `python bot.py COMMAND ...` (the same as the `conductbot` script)."""

from __future__ import annotations

from bot.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
