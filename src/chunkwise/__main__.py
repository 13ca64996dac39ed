"""``python -m chunkwise``: the chunkwise command, where its script is not found."""

if __name__ == "__main__":
    from chunkwise._console import main

    raise SystemExit(main())
