"""The ``chunkwise`` console script.

It takes over the stop signals before it imports anything of weight: a Ctrl-C while
the command line's modules load ends with the usual one line and exit code 130,
not a traceback from the middle of an import.
"""

from chunkwise._signals import hold, release, report_stop, signals_as_interrupts

_restore = signals_as_interrupts()
# Until main starts, a signal waits: the lines of the console script in between
# are outside any handler.
hold()


def main() -> int:
    """Run the command line on ``sys.argv``; return the exit code."""
    try:
        try:
            release()
            from chunkwise.cli import main as command
        except KeyboardInterrupt as stop:
            return report_stop(stop)
        return command()
    finally:
        _restore()


if __name__ == "__main__":
    raise SystemExit(main())
