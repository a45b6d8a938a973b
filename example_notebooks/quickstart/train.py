"""Fit y = w*x + b to noisy points by gradient descent and log the run to MLflow."""

import argparse
import random
import time

import mlflow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alpha", type=float, default=0.5, help="learning rate")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--label", default="")
    parser.add_argument("--pause", type=float, default=0.0,
                        help="seconds to wait after each epoch (to watch a run live)")
    args = parser.parse_args()

    rng = random.Random(42)
    points = [(i / 50, 3.0 * i / 50 + 0.5 + rng.gauss(0, 0.1)) for i in range(50)]
    w = b = 0.0
    # MLFLOW_RUN_ID is set by the launcher, so this joins the run it created.
    with mlflow.start_run():
        mlflow.set_tag("label", args.label)
        for epoch in range(args.epochs):
            grad_w = grad_b = loss = 0.0
            for x, y in points:
                err = w * x + b - y
                grad_w += 2 * err * x / len(points)
                grad_b += 2 * err / len(points)
                loss += err * err / len(points)
            w -= args.alpha * grad_w
            b -= args.alpha * grad_b
            mlflow.log_metric("loss", loss, step=epoch)
            if args.pause:
                time.sleep(args.pause)
        mlflow.log_metrics({"w": w, "b": b})
    print(f"fitted w={w:.3f} b={b:.3f} loss={loss:.4f}")


if __name__ == "__main__":
    main()
