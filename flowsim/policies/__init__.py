"""Intake, sequencing and intervention rules, by name."""

from .registry import KINDS, RuleInfo, UnknownRule, known_rules, lookup, register, unregister

__all__ = ["KINDS", "RuleInfo", "UnknownRule", "known_rules", "lookup", "register", "unregister"]
