"""Write src/lossatlas/nn.pyi from the functionals' signatures (see lossatlas._stubs)."""

from pathlib import Path

from lossatlas._stubs import render_nn_stub

STUB = Path(__file__).resolve().parents[1] / "src" / "lossatlas" / "nn.pyi"

if __name__ == "__main__":
    STUB.write_text(render_nn_stub())
    print(f"wrote {STUB}")
