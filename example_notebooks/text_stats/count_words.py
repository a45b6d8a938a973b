"""Count the words of a text file and log the vocabulary statistics to MLflow."""

import argparse
from collections import Counter

import mlflow

from words import read_words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="a UTF-8 text file")
    parser.add_argument("--min-length", type=int, default=3)
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()

    words = [w for w in read_words(args.data) if len(w) >= args.min_length]
    counts = Counter(words)
    with mlflow.start_run():
        mlflow.log_metrics({"words": len(words), "vocabulary": len(counts)})
        for rank, (word, n) in enumerate(counts.most_common(args.top), start=1):
            mlflow.set_tag(f"top.{rank}", f"{word} ({n})")
            print(f"{rank:2d}. {word:15s} {n}")


if __name__ == "__main__":
    main()
