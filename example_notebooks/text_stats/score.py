"""Score a text by the entropy of its smoothed unigram distribution, logged to MLflow."""

import argparse
import math
from collections import Counter

import mlflow

from words import read_words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--smoothing", type=float, default=1.0)
    parser.add_argument("--label", default="baseline")
    args = parser.parse_args()

    counts = Counter(read_words(args.data))
    total = sum(counts.values()) + args.smoothing * len(counts)
    probs = [(n + args.smoothing) / total for n in counts.values()]
    entropy = -sum(p * math.log2(p) for p in probs)
    with mlflow.start_run():
        mlflow.set_tag("label", args.label)
        mlflow.log_metric("entropy_bits", entropy)
    print(f"{args.label}: entropy {entropy:.3f} bits over {len(counts)} distinct words")


if __name__ == "__main__":
    main()
