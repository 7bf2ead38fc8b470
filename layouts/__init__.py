"""Screens as pure layout builders, one module per screen, plus shared widgets."""
