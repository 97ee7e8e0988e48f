"""``python -m lossatlas`` runs the command line."""

from lossatlas.cli import main

if __name__ == "__main__":
    main()
