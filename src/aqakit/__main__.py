"""``python -m aqakit``: the ``aqakit`` command, for environments where the script is not installed."""

from aqakit.cli import main

if __name__ == "__main__":
    main()
