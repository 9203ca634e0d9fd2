"""RequestGate's drain: it waits for answers still being written, not only for running handlers."""
from __future__ import annotations

import threading
import unittest

try:
    from . import _support  # noqa: F401  (puts sdk/ on sys.path)
except ImportError:  # run from inside modules/tests
    import _support  # type: ignore[no-redef]  # noqa: F401
from request_gate import GRANTED, RequestGate


class DrainWaitsForAnswers(unittest.TestCase):
    def test_a_released_request_whose_answer_is_not_sent_keeps_drain_waiting(self) -> None:
        gate: RequestGate[str] = RequestGate(max_requests=1, max_idle=4, pending=lambda _conn: False)
        gate.connection_opened("c")
        self.assertEqual(gate.request_arrived("c"), GRANTED)
        gate.release("c")  # the handler returned; its buffered answer is not written yet
        gate.stop()
        self.assertFalse(gate.wait_drained(0.05), "drain ended before the answer was written")
        sent = threading.Timer(0.05, lambda: gate.response_sent("c", keep=False))
        sent.start()
        self.assertTrue(gate.wait_drained(2.0))
        sent.join()


if __name__ == "__main__":
    unittest.main()
