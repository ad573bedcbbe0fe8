"""How much of a training update survives serving in bf16: trained model folders against their start.

For each trained folder: the share of weights whose bf16 cast differs from the start's (what a
training stage records and ``generation.engine.dtype: auto-by-change`` decides on), and for the
update U = trained - start and its bf16-served version S = bf16(trained) - start: the cosine
between S and U, |S - U| / |U| (the error bf16 serving adds, relative to the update) and |S| / |U|.

    python perf/precision.py TRAINED_DIR [TRAINED_DIR ...] [--start packaged:smollm2-135m-instruct]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.models import resolve_model
from harness.precision import bf16_change


def served_update(trained: Path, start: Path) -> dict:
    """Return cosine(S, U), |S - U| / |U| and |S| / |U| over the tensors both folders hold (float64 sums)."""
    from safetensors import safe_open

    dot = update = served = error = 0.0
    for path in sorted(trained.glob("*.safetensors")):
        with safe_open(path, "pt") as new, safe_open(start / path.name, "pt") as old:
            for name in new.keys():
                if name not in old.keys():
                    continue
                a, b = new.get_tensor(name).double(), old.get_tensor(name).double()
                u, s = a - b, a.bfloat16().double() - b
                dot, update = dot + float((u * s).sum()), update + float((u * u).sum())
                served, error = served + float((s * s).sum()), error + float(((s - u) ** 2).sum())
    return {"cosine": dot / (update * served) ** 0.5 if update and served else 0.0,
            "rounded_away": (error / update) ** 0.5 if update else 0.0, "served_norm": (served / update) ** 0.5 if update else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trained", nargs="+", type=Path)
    parser.add_argument("--start", default="packaged:smollm2-135m-instruct", help="the starting model (a reference or folder)")
    args = parser.parse_args()
    start = Path(resolve_model(args.start).path)
    for folder in args.trained:
        change, served = bf16_change(folder, start), served_update(folder, start)
        print(f"{folder}: {change['share']:.1%} of {change['compared']} weights differ from the start in bf16; served update: "
              f"cosine {served['cosine']:.2f} with the update, error |S - U| {served['rounded_away']:.2f}x |U|, "
              f"norm {served['served_norm']:.2f}x |U|")


if __name__ == "__main__":
    main()
