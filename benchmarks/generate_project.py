"""Generate a realistic, deterministic MLflow project folder to benchmark packaging on.

By default: 300 MB in 3,000 files, seed 0. The project holds an MLproject and
python_env.yaml, Python code in nested packages, docs, CSV/text data that compresses
(~2.5x with gzip) and binary data that does not (model weights, parquet-like blobs), plus
what packaging must leave out: a ``.git`` folder, a ``.venv`` virtualenv, ``__pycache__``
folders, an ``mlruns`` folder and a ``.env`` file with a (fake) token. With ``--no-extras``
the same project is written without those, so every packager packs the same files.

The same arguments always give byte-identical files.

Usage: .venv/bin/python benchmarks/generate_project.py OUT_DIR [--size 300MB] [--files 3000]
       [--seed 0] [--no-extras]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
from pathlib import Path

#: (category, share of files, share of bytes, excluded by our packaging)
CATEGORIES = [
    ("code", 0.14, 0.012, False),
    ("docs", 0.02, 0.003, False),
    ("csv", 0.45, 0.44, False),
    ("binary", 0.17, 0.40, False),
    ("git", 0.08, 0.05, True),
    ("venv", 0.12, 0.09, True),
    ("pycache", 0.02, 0.005, True),
]
_DIGITS = bytes((48 + b % 10) for b in range(256))
_WORDS = ("model train data batch loss metric feature label split score weight layer "
          "epoch config path value index result sample tensor frame column").split()


def parse_size(text: str) -> int:
    """``"300MB"`` -> 300_000_000 (also kB, GB, plain bytes)."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([kKmMgG]?)[bB]?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(float(m.group(1)) * {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[
        m.group(2).lower()])


def _split(rng: random.Random, total: int, count: int) -> list[int]:
    """``count`` log-normally distributed sizes summing to ``total``."""
    weights = [rng.lognormvariate(0, 1.2) for _ in range(count)]
    scale = total / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    sizes[0] += total - sum(sizes)
    return [max(1, s) for s in sizes]


def _code(rng: random.Random, size: int) -> bytes:
    out, n = [], 0
    out.append(b'"""Generated module."""\nimport math\n\n')
    while n < size:
        name = "_".join(rng.choice(_WORDS) for _ in range(2)) + str(rng.randrange(1000))
        arg = rng.choice(_WORDS)
        body = (f"\n\ndef {name}({arg}, scale={rng.randrange(1, 99)}):\n"
                f"    \"\"\"Compute the {rng.choice(_WORDS)} of {arg}.\"\"\"\n"
                f"    total = 0\n    for i in range(len({arg})):\n"
                f"        total += {arg}[i] * math.log(i + {rng.randrange(2, 9)})\n"
                f"    return total / scale\n").encode()
        out.append(body)
        n += len(body)
    return b"".join(out)[:size]


def _csv(rng: random.Random, size: int) -> bytes:
    digits = rng.randbytes(size).translate(_DIGITS)
    rows, pos, i = [b"id,feature_a,feature_b,feature_c,feature_d,label\n"], 0, 0
    n = len(rows[0])
    while n < size:
        d = digits[pos:pos + 24]
        if len(d) < 24:
            pos, d = 0, digits[:24]
        row = b"%d,0.%s,0.%s,%s.%s,-0.%s,%d\n" % (i, d[:6], d[6:12], d[12:14], d[14:18],
                                                 d[18:24], d[0] & 1)
        rows.append(row)
        n += len(row)
        pos += 24
        i += 1
    return b"".join(rows)[:size]


def _binary(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def _docs(rng: random.Random, size: int) -> bytes:
    words = [rng.choice(_WORDS) for _ in range(size // 6 + 1)]
    return (" ".join(words).encode() + b"\n")[:size]


def _paths(rng: random.Random, category: str, count: int) -> list[str]:
    out = []
    for i in range(count):
        if category == "code":
            depth = rng.randrange(1, 4)
            parts = ["src", "trainer"] + [f"{rng.choice(_WORDS)}s" for _ in range(depth)]
            out.append("/".join(parts) + f"/{rng.choice(_WORDS)}_{i}.py")
        elif category == "docs":
            out.append(f"docs/{rng.choice(_WORDS)}_{i}.md")
        elif category == "csv":
            out.append(f"data/raw/{2020 + i % 5}/{i % 12 + 1:02d}/part-{i:05d}.csv")
        elif category == "binary":
            folder = rng.choice(["models/checkpoints", "data/features", "data/images"])
            out.append(f"{folder}/blob-{i:05d}.{rng.choice(['bin', 'parquet', 'npy', 'png'])}")
        elif category == "git":
            h = f"{rng.getrandbits(160):040x}"
            out.append(f".git/objects/{h[:2]}/{h[2:]}")
        elif category == "venv":
            pkg = f"pkg{i % 40}"
            ext = "py" if i % 3 else "so"
            out.append(f".venv/lib/python3.11/site-packages/{pkg}/mod_{i}.{ext}")
        elif category == "pycache":
            out.append(f"src/trainer/__pycache__/mod_{i}.cpython-311.pyc")
    return out


FIXED = {
    "MLproject": b"""name: benchmark-project
python_env: python_env.yaml
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      data: {type: path, default: data/raw}
    command: "python -m trainer.train --alpha {alpha} --data {data}"
""",
    "python_env.yaml": b"python: \"3.11\"\ndependencies:\n  - mlflow\n  - pandas\n",
    "README.md": b"# Benchmark project\n\nGenerated by benchmarks/generate_project.py.\n",
    "src/trainer/__init__.py": b"",
    "src/trainer/train.py": b"import mlflow\n\nif __name__ == '__main__':\n"
                            b"    mlflow.log_metric('loss', 0.1)\n",
    "scripts/run.sh": b"#!/bin/sh\nexec python -m trainer.train \"$@\"\n",
}
EXTRAS = {
    ".env": b"DATABRICKS_TOKEN=dapi0000000000000000000000000000fake\n",
    ".git/HEAD": b"ref: refs/heads/main\n",
    ".git/config": b"[core]\n\trepositoryformatversion = 0\n",
    ".venv/pyvenv.cfg": b"home = /usr/bin\nversion = 3.11.0\n",
    "mlruns/0/meta.yaml": b"name: Default\n",
}


def generate(out: Path, *, size: int = 300_000_000, files: int = 3000, seed: int = 0,
             extras: bool = True) -> dict:
    """Write the project into ``out`` (created); returns counts of files and bytes."""
    rng = random.Random(seed)
    plan: list[tuple[str, str, int]] = []
    fixed_files = len(FIXED) + len(EXTRAS)
    for category, file_share, byte_share, excluded in CATEGORIES:
        count = max(1, round((files - fixed_files) * file_share))
        paths = _paths(rng, category, count)
        sizes = _split(rng, int(size * byte_share), count)
        plan += [(category, p, s) for p, s in zip(paths, sizes)]
    makers = {"code": _code, "docs": _docs, "csv": _csv, "binary": _binary, "git": _binary,
              "venv": _binary, "pycache": _binary}
    excluded_categories = {c for c, _, _, ex in CATEGORIES if ex}
    stats = {"files": 0, "bytes": 0, "excluded_files": 0, "excluded_bytes": 0}
    contents = dict(FIXED, **EXTRAS)
    for name, data in contents.items():
        if name in EXTRAS and not extras:
            continue
        _write(out / name, data, stats, name in EXTRAS)
    os.chmod(out / "scripts/run.sh", 0o755)
    for category, rel, n in plan:
        # Each file gets its own generator state so --no-extras writes identical content.
        file_rng = random.Random(f"{seed}:{rel}")
        maker = _code if category == "venv" and rel.endswith(".py") else makers[category]
        data = maker(file_rng, n)
        if category in excluded_categories and not extras:
            continue
        _write(out / rel, data, stats, category in excluded_categories)
    return stats


def _write(path: Path, data: bytes, stats: dict, excluded: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    stats["files"] += 1
    stats["bytes"] += len(data)
    if excluded:
        stats["excluded_files"] += 1
        stats["excluded_bytes"] += len(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to create (must not exist or be empty)")
    parser.add_argument("--size", type=parse_size, default=300_000_000,
                        help="total bytes, e.g. 300MB (default)")
    parser.add_argument("--files", type=int, default=3000, help="number of files (3000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-extras", action="store_true",
                        help="leave out .git, .venv, __pycache__, mlruns and .env")
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"error: {args.out} is not empty")
    args.out.mkdir(parents=True, exist_ok=True)
    stats = generate(args.out, size=args.size, files=args.files, seed=args.seed,
                     extras=not args.no_extras)
    print(f"{args.out}: {stats['files']:,} files, {stats['bytes'] / 1e6:.1f} MB "
          f"({stats['excluded_files']:,} files, {stats['excluded_bytes'] / 1e6:.1f} MB of them "
          f"in .git/.venv/__pycache__/mlruns/.env)")


if __name__ == "__main__":
    main()
