"""What every command of ``python app.py`` exits with (the README's "Command line")."""

EXIT_OK = 0
EXIT_USAGE_ERROR = 2  # bad input: a file, a setting, an argument
EXIT_UNAVAILABLE = 3  # the database or Redis cannot be reached
