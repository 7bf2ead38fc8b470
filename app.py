"""GridOps entry point and composition root.

``python app.py`` runs the complete demo, ``python app.py COMMAND`` one part (``--help``).
``create_app(settings)`` builds the whole dashboard — the web app of ``dashboard`` with every
screen's layout and callbacks — for the CLI, ``wsgi.py`` (gunicorn) and the tests. The layers
point one way, down: app.py → callbacks → layouts → dashboard → data_feeds → gridrules.
"""
from __future__ import annotations

import sys


def create_app(settings=None):
    """The dashboard for ``settings`` (read from the environment when not given)."""
    import dashboard
    from callbacks import notices, register_all
    from layouts import root

    return dashboard.create_app(settings, dashboard.Screens(layout=root.layout, register=register_all, on_error=notices.callback_failed))


def main(argv: list[str]) -> int:
    from dashboard.cli import main as run_command

    return run_command(argv, create_app)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
