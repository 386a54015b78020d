"""Efficiency methods, one file each; every file registers itself once with ``@register_method``."""
