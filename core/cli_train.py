"""Training-side subcommands (synth, train, eval) of the `relight` command line."""
from __future__ import annotations


def add_training_commands(sub, add_device) -> None:
    return None
