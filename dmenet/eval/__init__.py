"""Benchmark evaluation: metrics (:mod:`.metrics`), set-level DBD scoring (:mod:`.dbd`), benchmark loaders
(:mod:`.benchmarks`), the RTF and SYNDOF regression protocols (:mod:`.rtf`, :mod:`.syndof_test`), one protocol
class per task behind one interface (:mod:`.protocols`), report files
(:mod:`.report`) and the runner behind ``python -m dmenet.evaluate`` (:mod:`.runner`)."""
