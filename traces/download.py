"""``python -m traces.download NAME [NAME ...] [--base-url URL]``: fetch named datasets into the cache."""

from __future__ import annotations

import argparse

from .datasets import dataset_names, download_dataset
from .errors import run_cli


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="+", choices=dataset_names(), metavar="NAME",
                        help=f"one of: {', '.join(dataset_names())}")
    parser.add_argument("--base-url", default=None, help="mirror laid out like NetLLM's repository")
    args = parser.parse_args(argv)
    for name in args.names:
        print(f"{name}: {download_dataset(name, base_url=args.base_url)}")


if __name__ == "__main__":
    run_cli(main)
