"""A hostile peer cannot make the honest side's transcript fail to verify (PROTOCOL.md §11.5
step 5.10): chunks it cuts against the rules of §8.1, or sends again, are taken or refused one
by one by the daemon, and its exported transcript then verifies and says which envelopes'
content it does not account for."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bridge.home.config import Limits

from .conftest import SHARED_LIMITS
from .hostile import World, chunk_payloads, manifest, unique


def bridge(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_peer_recutting_and_resending_chunks_cannot_make_our_transcript_fail(
        own_world: Callable[[Limits], World], tmp_path: Path) -> None:
    w = own_world(SHARED_LIMITS)
    doc = manifest(w.alpha_key, unique("M-RECUT"), n=8)
    four, two = chunk_payloads(doc, 4), chunk_payloads(doc, 2)
    # Entries 0–3 in a chunk of 4, then 4–5 and 6–7 in chunks of 2: each is a valid chunk on
    # its own, so beta takes all three; then the first chunk again, which it refuses.
    w.accept(four[0])
    w.accept(two[2])
    w.accept(two[3])
    w.refused_in_chain(four[0], "bad_chunk")
    path = tmp_path / "beta-alpha.transcript"
    out = bridge("--home", w.beta.home.path, "audit", "export", "--peer", "alpha", "-o", path)
    assert out.returncode == 0, out.stdout + out.stderr
    out = bridge("verify", path, "--keys", w.alpha.home.public_key_path("alpha"),
                 "--keys", w.beta.home.public_key_path("beta"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert ("content not accounted for: envelope 2 alpha→beta, envelope 3 alpha→beta, "
            "envelope 4 alpha→beta") in out.stdout


def test_transcript_of_everything_the_hostile_peer_sent_verifies(world: World,
                                                                 tmp_path: Path) -> None:
    """Run after the other cases of the package (files run in name order), this exports the
    shared daemon's whole exchange with the hostile alpha: every refused chunk, forged
    document and replayed envelope of the suite. It must still verify."""
    path = tmp_path / "shared.transcript"
    out = bridge("--home", world.beta.home.path, "audit", "export", "--peer", "alpha", "-o",
                 path)
    assert out.returncode == 0, out.stdout + out.stderr
    out = bridge("verify", path, "--keys", world.alpha.home.public_key_path("alpha"),
                 "--keys", world.beta.home.public_key_path("beta"))
    assert out.returncode == 0, out.stdout + out.stderr
