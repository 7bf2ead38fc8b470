"""Replay recorded data through the feed (to be written)."""


def add_arguments(parser) -> None:
    parser.add_argument("file")


def command(settings, args) -> int:
    raise NotImplementedError
