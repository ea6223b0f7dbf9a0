"""``python -m classifier`` runs the CLI."""

from classifier.cli import main

if __name__ == "__main__":
    main()
