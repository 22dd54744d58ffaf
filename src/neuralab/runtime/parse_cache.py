"""OmegaConf's interpolation parse trees, parsed once per process.

OmegaConf parses an interpolation (`${data.num_classes}`) with its ANTLR grammar, in
pure Python, every time the value is read. A job reads its ~14 interpolations about 36
times (the resolved copy, then each builder), and every job of a sweep reads the same
strings again: the 64 jobs of a seed x lr sweep parsed 2346 times, ~1.5 s of the
sweep. A parse tree depends only on the text, and resolving a value reads its tree
without changing it (OmegaConf's visitor keeps no state in it; each tree's tokens keep
their own input), so each text is parsed once. A text that fails to parse is not
kept: it raises at every read, as before.
"""

from __future__ import annotations

import functools

from omegaconf import base, grammar_parser

# Distinct interpolation texts of a process: a config's dozens, plus a sweep's job dirs.
MAX_TEXTS = 4096


def parse_interpolations_once() -> None:
    """Resolution (omegaconf.base) parses through a cache from now on. Without the name
    there (another OmegaConf release), values resolve as before, only slower."""
    if getattr(base, "parse", None) is grammar_parser.parse:
        base.parse = functools.lru_cache(maxsize=MAX_TEXTS)(grammar_parser.parse)
