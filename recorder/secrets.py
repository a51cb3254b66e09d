"""Finding credentials in an environment and scrubbing their values from captured text.

A variable is secret when its name matches a secret pattern (and no allow pattern),
or when its value looks like a credential whatever its name. A URL with a password
keeps its shape with the password redacted. Every secret value is then replaced by
``[REDACTED]`` wherever it appears in argv, streams, events and the manifest, and a
stored file that holds one is left out of the tape.

A secret is also looked for in the pieces a build may print on their own, and in the
forms a build may print it in:

* each line of a multi-line secret (a PEM key's base64 lines, never its ``-----BEGIN``
  and ``-----END`` lines), and each string of a JSON secret that is under a secret-named
  key or looks like a credential; lines and strings shorter than ``MIN_PART_LENGTH`` or
  without a letter or digit are not, so nothing innocent is scrubbed;
* its base64, standard and URL-safe, padded or not, wrapped or not, and at each of the
  three byte alignments, so a secret inside a longer encoded text is found too;
* its URL encoding, by any encoder (``%XX`` in either case, ``+`` or ``%20`` for a space).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import json
import re
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recorder.model import ListedRow

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
# A line or JSON string of a secret is scrubbed on its own from this length: shorter ones
# ("}", "=", a PEM's last few characters) are too common to replace everywhere.
MIN_PART_LENGTH = 8
# A value's base64 is looked for from this many bytes: shorter ones give a few base64
# characters that also occur by chance in any large base64 text.
MIN_ENCODED_BYTES = 6
_PEM_ARMOUR = re.compile(r"^-{3,}\s*(?:BEGIN|END)\b[^-]*-{3,}$")
_BASE64_LINE = re.compile(r"^[A-Za-z0-9+/=_-]+$")


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
    scrub = {v for v in values if len(v) >= MIN_SCRUB_LENGTH}
    for value in list(scrub):
        scrub.update(secret_parts(value, policy))
    digests = {name: value_digest(name, env[name]) for name in names}
    return Redaction(out, names, sorted(scrub, key=lambda v: (-len(v), v)), digests)


def secret_parts(value: str, policy: SecretPolicy) -> list[str]:
    """The pieces of a multi-line or JSON secret that a build could print on their own."""
    try:
        doc = json.loads(value)
    except ValueError:
        doc = None
    if isinstance(doc, dict | list):
        parts: list[str] = []
        for key, leaf in _json_strings(doc, ""):
            # Public endpoints ("token_uri": "https://...") are not secret whatever the key.
            public_url = "://" in leaf and not _URL_PASSWORD.search(leaf)
            if (
                len(leaf) >= MIN_SCRUB_LENGTH
                and not public_url
                and (policy.name_is_secret(key) or _looks_like_a_credential(leaf))
            ):
                parts.append(leaf)
                parts.extend(_lines(leaf))
        return parts
    return _lines(value)


def _json_strings(doc: object, key: str) -> Iterable[tuple[str, str]]:
    """(nearest key, string) for every string value in a JSON document."""
    if isinstance(doc, str):
        yield key, doc
    elif isinstance(doc, list):
        for item in doc:
            yield from _json_strings(item, key)
    elif isinstance(doc, dict):
        for k, item in doc.items():
            yield from _json_strings(item, str(k))


def _looks_like_a_credential(s: str) -> bool:
    """A known credential shape, or a long run of letters and digits without spaces."""
    if _VALUE_PATTERNS.match(s):
        return True
    if len(s) < 16 or any(c.isspace() for c in s) or "://" in s:
        return False
    return any(c.isdigit() for c in s) and any(c.isalpha() for c in s)


def _lines(value: str) -> list[str]:
    """The lines of a multi-line secret worth scrubbing on their own."""
    lines = [line.strip() for line in value.splitlines()]
    if len(lines) < 2:
        return []
    pem = any(_PEM_ARMOUR.match(line) for line in lines)
    return [
        line
        for line in lines
        if len(line) >= MIN_PART_LENGTH
        and any(c.isalnum() for c in line)
        and not _PEM_ARMOUR.match(line)
        # In a PEM block only the base64 body is secret, not headers like "Proc-Type: 4,ENCRYPTED".
        and (not pem or _BASE64_LINE.match(line))
    ]


def encoded_patterns(value: str) -> list[str]:
    """Regular expressions for ``value`` as written, URL-encoded and base64-encoded.

    The base64 patterns are the characters that depend on the value's bytes alone at each
    alignment (0, 1 or 2 bytes of other data before it), so they also match a value in
    the middle of a longer encoded text, with or without padding, and may be broken by
    line wraps (``base64`` wraps at 76 columns, PEM at 64).
    """
    patterns = [_url_pattern(value)]
    raw = value.encode("utf-8", "surrogateescape")
    if len(raw) < MIN_ENCODED_BYTES:
        return patterns
    cores: set[str] = set()
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + raw).decode().rstrip("=")
        # Characters 6i..6i+6 bits wholly inside the value's bits [8*shift, 8*(shift+len)).
        core = encoded[(8 * shift + 5) // 6 : 8 * (shift + len(raw)) // 6]
        cores.update((core, core.translate(_URLSAFE)))
    wrap = r"\r?\n?"
    patterns.extend(wrap.join(re.escape(c) for c in core) for core in sorted(cores))
    return patterns


_URLSAFE = str.maketrans("+/", "-_")


def _url_pattern(value: str) -> str:
    """``value`` itself, or with any of its other characters percent-encoded (either case)."""
    out = []
    for ch in value:
        if ch.isascii() and ch.isalnum():
            out.append(ch)
            continue
        escaped = "".join(
            f"%[{h[0]}{h[0].lower()}][{h[1]}{h[1].lower()}]"
            for h in (f"{b:02X}" for b in ch.encode("utf-8", "surrogateescape"))
        )
        alternatives = [re.escape(ch), escaped] + (["\\+"] if ch == " " else [])
        out.append("(?:" + "|".join(alternatives) + ")")
    return "".join(out)


class Scrubber:
    """Finds and replaces secret values, in every form they may take, in text and bytes.

    Finding is cheap: the values are searched as plain strings in the data, in its URL
    decoding and in its base64 decodings (every character that cannot be base64 dropped,
    decoded at each of the four offsets, the URL-safe alphabet mapped to the standard
    one), all in C. Replacing uses one regular expression with every encoded form
    (``encoded_patterns``) of the values found, built once per set of them and run only
    on data that holds one. Longer values come first, so a value that contains another
    is replaced whole.
    """

    def __init__(self, values: Iterable[str]) -> None:
        self.values = sorted(set(values), key=lambda v: (-len(v), v))
        self._plain = [v.encode("utf-8", "surrogateescape") for v in self.values]
        self._long = [i for i, v in enumerate(self._plain) if len(v) >= MIN_ENCODED_BYTES]
        self._shortest_core = min(
            (_shortest_core(len(self._plain[i])) for i in self._long), default=0
        )
        self._spaced = any(b" " in v for v in self._plain)
        # A value's URL encoding keeps its letters and digits: its longest run of them is
        # looked for before the data is URL-decoded (None: decode whenever there is a "%").
        self._url_anchors = [_alnum_run(v) for v in self._plain if not v.isalnum()]
        self._forms: dict[frozenset[int], tuple[re.Pattern[str], re.Pattern[bytes]]] = {}

    def __bool__(self) -> bool:
        return bool(self.values)

    def found_in(self, data: bytes) -> bool:
        """Whether any secret value is in ``data``, as written, URL-encoded or in base64."""
        return next(self._present(data), None) is not None

    def _present(self, data: bytes) -> Iterator[int]:
        """The values in ``data`` in any form, as indices into ``values``, found lazily."""
        # One substring search per value beats one regular expression of them all by 5-10x.
        yield from (i for i, v in enumerate(self._plain) if v in data)
        if any(a is None or a in data for a in self._url_anchors):
            encodings = [data] if b"%" in data else []
            if self._spaced and b"+" in data:  # a form's "+" for a space
                encodings.append(data.replace(b"+", b" "))
            for encoded in encodings:
                decoded = urllib.parse.unquote_to_bytes(encoded)
                yield from (i for i, v in enumerate(self._plain) if v in decoded)
        if not self._long:
            return
        # Only runs of base64 characters (line breaks included) long enough to hold the
        # shortest value's base64 are decoded, all together: each run's own alignment is
        # one of the four offsets whatever comes before it.
        runs = data.translate(_BASE64_RUNS)
        needle = b"a" * self._shortest_core
        pieces = []
        start = runs.find(needle)
        while start >= 0:
            end = runs.find(b" ", start + len(needle))
            end = len(runs) if end < 0 else end
            pieces.append(data[start:end])
            start = runs.find(needle, end)
        if not pieces:
            return
        # Padding counts as a character (so groups stay aligned) of zero bits.
        alphabet = b"".join(pieces).translate(_BASE64_STANDARD, _NOT_BASE64)
        for offset in range(4):
            quads = alphabet[offset:]
            quads += b"A" * (-len(quads) % 4)
            decoded = binascii.a2b_base64(quads)
            yield from (i for i in self._long if self._plain[i] in decoded)

    def _patterns(self, present: frozenset[int]) -> tuple[re.Pattern[str], re.Pattern[bytes]]:
        """One expression for every form of the values found (built once per set of them)."""
        if present not in self._forms:
            # A multi-line value is replaced as written; its lines, scrubbed on their own
            # (``secret_parts``), cover its encoded forms.
            values = [self.values[i] for i in sorted(present)]  # still longest first
            text = "|".join(
                p for v in values for p in ([re.escape(v)] if "\n" in v else encoded_patterns(v))
            )
            self._forms[present] = (
                re.compile(text),
                re.compile(text.encode("utf-8", "surrogateescape")),
            )
        return self._forms[present]

    def text(self, s: str) -> str:
        present = frozenset(self._present(s.encode("utf-8", "surrogateescape")))
        return self._patterns(present)[0].sub(REDACTED, s) if present else s

    def tree(self, obj: Any, keep: frozenset[str] = frozenset()) -> Any:
        """Scrub every string (keys too) in a JSON-like structure; ``obj`` itself if none has one.

        Values under the keys in ``keep`` (content digests) are left alone: a short
        secret could otherwise match inside a hex digest and break a blob reference.
        """
        if not self.values:
            return obj  # nothing to look for: the walk was 50-70 ms of a 3,857-process manifest
        strings: list[str] = []
        _strings(obj, keep, strings)
        if not self.found_in("\0".join(strings).encode("utf-8", "surrogateescape")):
            return obj
        return self._tree(obj, keep)

    def rows(self, rows: list[ListedRow]) -> list[ListedRow]:
        """Scrub the paths and link targets of listed rows; ``rows`` itself if none has one."""
        if not self.values:
            return rows
        text = "\0".join(x for row in rows for x in (row[0], *row[4:]))
        if not self.found_in(text.encode("utf-8", "surrogateescape")):
            return rows
        return [
            (self.text(row[0]), row[1], row[2], row[3])
            if len(row) == 4
            else (self.text(row[0]), row[1], row[2], row[3], self.text(row[4]))
            for row in rows
        ]

    def _tree(self, obj: Any, keep: frozenset[str]) -> Any:
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, list):
            return [self._tree(x, keep) for x in obj]
        if isinstance(obj, dict):
            return {self.text(k): v if k in keep else self._tree(v, keep) for k, v in obj.items()}
        return obj

    def stream(self, data: bytes, sizes: list[int]) -> tuple[bytes, list[int]]:
        """Scrub one captured stream and re-split it into chunks of the new sizes.

        A secret that straddles two chunks is still found, because the whole stream is
        scrubbed at once; the replacement goes to the chunk where the secret started.
        """
        present = frozenset(self._present(data)) if sizes else frozenset()
        if not present:
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
        for m in self._patterns(present)[1].finditer(data):
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


def _shortest_core(n: int) -> int:
    """How many base64 characters depend on an ``n``-byte value alone, at the worst alignment."""
    return min(8 * (shift + n) // 6 - (8 * shift + 5) // 6 for shift in range(3))


def _alnum_run(value: bytes) -> bytes | None:
    runs = re.findall(rb"[A-Za-z0-9]+", value)
    longest = max(runs, key=len, default=b"")
    return longest if len(longest) >= MIN_SCRUB_LENGTH else None


def _strings(obj: Any, keep: frozenset[str], out: list[str]) -> None:
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, list):
        for x in obj:
            _strings(x, keep, out)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.append(k)
            if k not in keep:
                _strings(v, keep, out)


_BASE64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# Maps the URL-safe alphabet onto the standard one and padding onto "A" (zero bits);
# everything else is deleted.
_BASE64_STANDARD = bytes.maketrans(b"-_=", b"+/A")
_NOT_BASE64 = bytes(sorted(set(range(256)) - set(_BASE64_CHARS) - set(b"-_=")))
# Either alphabet, padding and line breaks become "a", everything else " ".
_BASE64_RUNS = bytes(b"a"[0] if c in _BASE64_CHARS + b"-_=\r\n" else b" "[0] for c in range(256))
