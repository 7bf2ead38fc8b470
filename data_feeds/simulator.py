"""Simulated district traffic (to be written)."""


def add_arguments(parser) -> None:
    pass


def command(settings, args) -> int:
    raise NotImplementedError
