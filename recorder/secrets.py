"""Finding credentials in an environment and scrubbing their values from captured text.

A variable is secret when its name matches a secret pattern (and no allow pattern),
or when its value looks like a credential whatever its name. A URL with a password
keeps its shape with the password redacted. Every secret value is then replaced by
``[REDACTED]`` wherever it appears in argv, streams, events and the manifest.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

REDACTED = "[REDACTED]"

DEFAULT_SECRET_NAMES: tuple[str, ...] = (
    "*TOKEN*",
    "*SECRET*",
    "*PASSWORD*",
    "*PASSWD*",
    "*PASSPHRASE*",
    "*_KEY",
    "*_KEY_*",
    "*APIKEY*",
    "*API_KEY*",
    "*PRIVATE*",
    "*CREDENTIAL*",
    "*_AUTH",
    "*AUTH_*",
    "*_PAT",
    "*COOKIE*",
    "*SESSION_ID*",
    "*DSN*",
)
# Names that match a pattern above but carry no secret by convention.
DEFAULT_ALLOWED_NAMES: tuple[str, ...] = (
    "BUILDTAPE_*",
    "SSH_AUTH_SOCK",
    "GPG_AGENT_INFO",
    "*_KEYRING*",
    "XAUTHORITY",
)
# Credential shapes recognised by value, whatever the variable is called.
_VALUE_PATTERNS = re.compile(
    r"^(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|glpat-[A-Za-z0-9_-]{16,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}"
    r"|sk-[A-Za-z0-9_-]{20,}|npm_[A-Za-z0-9]{30,}|pypi-[A-Za-z0-9_-]{30,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----.*)$",
    re.DOTALL,
)
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)@")

# Shorter values are redacted in the environment but not scrubbed from text, where
# replacing every "1" or "yes" would corrupt the capture without protecting anything.
MIN_SCRUB_LENGTH = 4


@dataclass(frozen=True)
class SecretPolicy:
    """Which variable names are secret. Patterns are shell globs, matched case-insensitively."""

    secret_names: tuple[str, ...] = DEFAULT_SECRET_NAMES
    allowed_names: tuple[str, ...] = DEFAULT_ALLOWED_NAMES
    extra_secret_names: tuple[str, ...] = ()
    extra_allowed_names: tuple[str, ...] = ()

    def name_is_secret(self, name: str) -> bool:
        upper = name.upper()

        def match(patterns: Iterable[str]) -> bool:
            return any(fnmatch.fnmatchcase(upper, p.upper()) for p in patterns)

        if match(self.extra_allowed_names):
            return False
        if match(self.extra_secret_names):
            return True
        return match(self.secret_names) and not match(self.allowed_names)


@dataclass
class Redaction:
    """The redacted environment and the values to scrub from everything else."""

    env: dict[str, str]
    redacted_names: list[str]
    values: list[str] = field(default_factory=list)
    # name -> value_digest(name, value): lets `diff` say a secret changed, never what it is.
    digests: dict[str, str] = field(default_factory=dict)

    def scrubber(self) -> Scrubber:
        return Scrubber(self.values)


def value_digest(name: str, value: str) -> str:
    """A slow, salted, truncated digest of a secret, so two tapes can tell whether it changed.

    PBKDF2 with 20,000 iterations and the variable's name as salt makes guessing a weak
    secret from a tape expensive; 64 bits are plenty to tell "same" from "changed".
    """
    raw = hashlib.pbkdf2_hmac(
        "sha256", value.encode("utf-8", "surrogateescape"), f"buildtape:{name}".encode(), 20_000
    )
    return raw.hex()[:16]


def redact_environment(env: Mapping[str, str], policy: SecretPolicy) -> Redaction:
    out: dict[str, str] = {}
    names: list[str] = []
    values: set[str] = set()
    for name in sorted(env):
        value = env[name]
        if policy.name_is_secret(name) or _VALUE_PATTERNS.match(value):
            out[name] = REDACTED
            names.append(name)
            values.add(value)
            continue
        masked = _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED + "@", value)
        if masked != value:
            names.append(name)
            values.update(m.group("pw") for m in _URL_PASSWORD.finditer(value))
        out[name] = masked
    scrub = sorted((v for v in values if len(v) >= MIN_SCRUB_LENGTH), key=lambda v: (-len(v), v))
    digests = {name: value_digest(name, env[name]) for name in names}
    return Redaction(out, names, scrub, digests)


class Scrubber:
    """Replaces secret values in text and bytes; longest values first, so overlaps lose nothing."""

    def __init__(self, values: Iterable[str]) -> None:
        self.values = sorted(set(values), key=lambda v: (-len(v), v))
        self._text = (
            re.compile("|".join(re.escape(v) for v in self.values)) if self.values else None
        )
        encoded = [v.encode("utf-8", "surrogateescape") for v in self.values]
        self._bytes = re.compile(b"|".join(re.escape(v) for v in encoded)) if encoded else None

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, s: str) -> str:
        return self._text.sub(REDACTED, s) if self._text else s

    def found_in(self, data: bytes) -> bool:
        return bool(self._bytes and self._bytes.search(data))

    def tree(self, obj: Any, keep: frozenset[str] = frozenset()) -> Any:
        """Scrub every string (keys too) in a JSON-like structure.

        Values under the keys in ``keep`` (content digests) are left alone: a short
        secret could otherwise match inside a hex digest and break a blob reference.
        """
        if not self._text:
            return obj
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, list):
            return [self.tree(x, keep) for x in obj]
        if isinstance(obj, dict):
            return {self.text(k): v if k in keep else self.tree(v, keep) for k, v in obj.items()}
        return obj

    def stream(self, data: bytes, sizes: list[int]) -> tuple[bytes, list[int]]:
        """Scrub one captured stream and re-split it into chunks of the new sizes.

        A secret that straddles two chunks is still found, because the whole stream is
        scrubbed at once; the replacement goes to the chunk where the secret started.
        """
        if not self._bytes or not sizes:
            return data, sizes
        pieces: list[bytes] = []
        # Chunk ends in the original stream, moved to where they fall after scrubbing.
        ends: list[int] = []
        acc = 0
        for size in sizes:
            acc += size
            ends.append(acc)
        new_ends: list[int] = []
        pos = 0
        out_len = 0
        end_i = 0
        replacement = REDACTED.encode()
        for m in self._bytes.finditer(data):
            while end_i < len(ends) and ends[end_i] <= m.start():
                new_ends.append(out_len + ends[end_i] - pos)
                end_i += 1
            pieces.append(data[pos : m.start()])
            out_len += m.start() - pos
            pieces.append(replacement)
            out_len += len(replacement)
            pos = m.end()
            while end_i < len(ends) and ends[end_i] <= pos:
                new_ends.append(out_len)
                end_i += 1
        pieces.append(data[pos:])
        while end_i < len(ends):
            new_ends.append(out_len + ends[end_i] - pos)
            end_i += 1
        new_sizes = [b - a for a, b in zip([0, *new_ends[:-1]], new_ends, strict=True)]
        return b"".join(pieces), new_sizes
