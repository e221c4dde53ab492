"""The core walk-through (`make demo` before the service) runs, verifies and catches tampering."""

from __future__ import annotations

from fixtures import walkthrough


def test_walkthrough_verifies_and_catches_a_flipped_bit() -> None:
    lines: list[str] = []
    walkthrough.run(lines.append)
    text = "\n".join(lines)
    assert "[6] verified" in text
    assert "[7] one flipped bit in the entry is caught: ProofError" in text
    assert "ni:///sha-256;" in text and "?ver=CBV2.0" in text
    assert "demo-only" in text
