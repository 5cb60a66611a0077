"""A cheap password hash for the test process only.

The real PBKDF2 hasher costs about 0.4 s per password on the 2-core CI machine, and the suite
creates well over a thousand users. This one writes the same algorithm ("pbkdf2_sha256") with
few iterations; the count is part of the stored hash, so the live platform processes the tests
start (with the real hashers) still verify these passwords, and re-hash them at full strength
on a successful sign-in, as they would after an upgrade."""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class FastTestHasher(PBKDF2PasswordHasher):
    iterations = 1_000
