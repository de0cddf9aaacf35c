"""Run by tests/test_distributed.py under torchrun: ``python -m emoser train``, except that
rank 1 dies after its first epoch (a crashed peer must end the run, never hang it), or with
``EMOSER_TEST_HANG=1`` stops answering (sleeps) instead: the others' timeout must end it."""
import os
import sys
import time

from emoser import cli
from emoser.training import loop

_call_callback = loop.call_callback


def _dying(callback, record, model):
    if int(os.environ.get("RANK", "0")) == 1 and record["epoch"] == 1:
        if os.environ.get("EMOSER_TEST_HANG") == "1":
            time.sleep(600)
        raise RuntimeError("rank 1: simulated crash after epoch 1")
    return _call_callback(callback, record, model)


loop.call_callback = _dying
raise SystemExit(cli.main(sys.argv[1:]))
