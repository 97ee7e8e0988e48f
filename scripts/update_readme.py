"""Rewrite the index of losses in README.md from the catalog (``make readme``)."""

from pathlib import Path

from lossatlas.docs import update_readme

if __name__ == "__main__":
    readme = Path(__file__).resolve().parent.parent / "README.md"
    changed = update_readme(readme)
    print(f"{readme}: {'updated' if changed else 'already up to date'}")
