"""``python -m emoser``: see :mod:`emoser.cli`.

Chapter: chapters/12_your_voice.ipynb
"""
from .cli import main

raise SystemExit(main())
