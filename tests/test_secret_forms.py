"""Secrets in the pieces and encodings a build prints them in never reach the tape.

A multi-line secret is scrubbed line by line (a build that prints a PEM key's first two
lines leaks its first base64 line otherwise), and every secret also as base64 (both
alphabets, any alignment, padded or not, wrapped or not) and URL-encoded.
"""

from __future__ import annotations

import base64
import os
import random
import shlex
import string
import sys
import urllib.parse
from pathlib import Path

import pytest
import zstandard

from recorder.secrets import REDACTED, Scrubber, SecretPolicy, redact_environment
from recorder.tape import open_tape
from tests.conftest import buildtape, needs_strace


def fake_pem(seed: int) -> str:
    """A PEM block shaped like a 2048-bit private key: 25 random base64 lines."""
    body = base64.b64encode(random.Random(seed).randbytes(1190)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join(["-----BEGIN PRIVATE KEY-----", *lines, "-----END PRIVATE KEY-----"])


PEM = fake_pem(12)
PEM_BODY = PEM.splitlines()[1:-1]
TOKEN = "tk_9f/Q+x=7 " + "".join(random.Random(7).choices(string.ascii_letters, k=24))


def test_each_line_of_a_multi_line_secret_is_scrubbed_but_not_its_armour() -> None:
    r = redact_environment({"DEPLOY_KEY": PEM}, SecretPolicy())
    s = r.scrubber()
    printed = "\n".join(PEM.splitlines()[:2]) + "\n"  # `head -n 2`
    assert s.text(printed) == f"-----BEGIN PRIVATE KEY-----\n{REDACTED}\n"
    for innocent in ["-----END PRIVATE KEY-----", "{", "}", "key = value"]:
        assert s.text(innocent) == innocent and not s.found_in(innocent.encode())


def test_json_credentials_scrub_their_secret_strings_only() -> None:
    import json

    creds = json.dumps(
        {
            "type": "service_account",
            "project_id": "demo",
            "private_key_id": "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
            "private_key": PEM + "\n",
            "client_secret": "GOCSPX-abcdefghijklmnop",
            "token_uri": "https://oauth2.googleapis.com/token",
        },
        indent=2,
    )
    s = redact_environment({"GOOGLE_CREDENTIALS": creds}, SecretPolicy()).scrubber()
    assert s.text("id 0a1b2c3d4e5f60718293a4b5c6d7e8f901234567") == f"id {REDACTED}"
    assert s.text(PEM_BODY[3]) == REDACTED
    assert s.text("secret=GOCSPX-abcdefghijklmnop") == f"secret={REDACTED}"
    for innocent in ['"type": "service_account",', "https://oauth2.googleapis.com/token", "demo"]:
        assert s.text(innocent) == innocent


def b64_forms(secret: bytes) -> list[str]:
    """The value base64-encoded at the three alignments, both alphabets, padded or not."""
    out = []
    for prefix in (b"", b"x", b"xy"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            out.append(encode(prefix + secret + b"!").decode())
            out.append(encode(prefix + secret).decode().rstrip("="))
    return out


@pytest.mark.parametrize("form", range(12))
def test_base64_forms_are_found_and_replaced(form: int) -> None:
    s = Scrubber([TOKEN])
    encoded = b64_forms(TOKEN.encode())[form]
    text = f"log: {encoded} end"
    assert s.found_in(text.encode())
    scrubbed = s.text(text)
    assert REDACTED in scrubbed and not s.found_in(scrubbed.encode())


def test_url_forms_and_wrapped_base64_are_found_and_replaced() -> None:
    s = Scrubber([TOKEN])
    wrapped = base64.encodebytes(b"-" * 50 + TOKEN.encode() * 3).decode()  # 76 columns
    quoted = urllib.parse.quote(TOKEN, safe="")
    for text in [
        quoted,
        quoted.replace("%2F", "%2f"),
        urllib.parse.quote_plus(TOKEN),
        urllib.parse.quote(TOKEN),
        wrapped,
    ]:
        assert s.found_in(text.encode()), text
        assert not s.found_in(s.text(text).encode()), s.text(text)


def test_a_manifest_is_scrubbed_wherever_a_secret_hides_in_its_strings() -> None:
    """The tree is searched as one JSON text: quotes, backslashes and line breaks in a value
    or around it (JSON escapes them) must not hide it, and a clean tree is not rebuilt."""
    quoted = 'pa"ss\\wo\nrd-' + TOKEN[-12:]
    s = Scrubber([quoted, TOKEN])
    wrapped = base64.encodebytes(b"xy" + TOKEN.encode()).decode()  # broken at 76 columns
    tree = {
        "argv": ["sh", "-c", f"echo '{quoted}'"],
        "notes": ["\\n" + TOKEN, f"key:\n{wrapped}"],
        TOKEN: 1,
        "sha256": TOKEN,  # a digest key: left alone
    }
    out = s.tree(tree, keep=frozenset({"sha256"}))
    assert out["argv"][2] == f"echo '{REDACTED}'"
    assert out["notes"][0] == "\\n" + REDACTED
    assert not s.found_in(out["notes"][1].encode())
    assert REDACTED in out and out["sha256"] == TOKEN
    # Each form alone in a tree, so no other value gives the tree away.
    for alone in ({"argv": [f"echo '{quoted}'"]}, {"notes": [f"key:\n{wrapped}"]}):
        assert s.tree(alone) != alone, alone
    clean = {"argv": ["make", "-j2"], "paths": ["a\\nb", 'q"'], "n": [1, 2.5, None]}
    assert s.tree(clean) is clean


@needs_strace
def test_planted_secret_forms_appear_in_no_byte_of_the_tape(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    # Read by the build and stored: lines as common as a PEM's armour are not secret.
    (ws / "notes.txt").write_text("{\n}\n-----END PRIVATE KEY-----\n")
    py = shlex.quote(sys.executable)
    url = f"{py} -c \"import os, urllib.parse; print(urllib.parse.quote_plus(os.environ['API_TOKEN']))\""
    b64url = (
        f'{py} -c "import os, base64; '
        "print(base64.urlsafe_b64encode(b'ab' + os.environ['API_TOKEN'].encode()).decode())\""
    )
    script = "; ".join(
        [
            'printf "%s\\n" "$DEPLOY_KEY" | head -n 2',  # armour and the first base64 line
            'printf "%s" "$API_TOKEN" | base64',
            f"{b64url} >&2",
            f'/bin/echo "q=$({url})" > /dev/null',  # in argv only
            'printf "%s\\n" "$DEPLOY_KEY" | sed -n 5p > pem-line.txt',
            'printf "%s" "$API_TOKEN" | base64 > encoded.txt',
            f"{url} > url.txt",
            "cat notes.txt > /dev/null",
            'printf \'{"kind":"event","name":"e","data":{"v":"%s"}}\\n\' '
            '"$(printf "%s" "$API_TOKEN" | base64)" >> "$BUILDTAPE_EVENTS"',
        ]
    )
    env = {**os.environ, "DEPLOY_KEY": PEM, "API_TOKEN": TOKEN}
    tape = tmp_path / "s.tape"
    rec = buildtape("record", "-o", tape, "--", "sh", "-c", script, cwd=ws, env=env)
    assert rec.returncode == 0, rec.stderr
    printed_b64 = base64.b64encode(TOKEN.encode()).decode()
    assert rec.stdout.decode() == f"{PEM.splitlines()[0]}\n{PEM_BODY[0]}\n{printed_b64}\n"

    with zstandard.ZstdDecompressor().stream_reader(tape.open("rb"), read_across_frames=True) as r:
        raw = r.read()
    assert len(raw) > 2_000  # really decompressed: the manifest and the streams
    forms = [
        TOKEN,
        printed_b64,
        base64.urlsafe_b64encode(b"ab" + TOKEN.encode()).decode(),
        urllib.parse.quote_plus(TOKEN),
        urllib.parse.quote(TOKEN, safe=""),
        *PEM_BODY,
    ]
    for form in forms:
        for piece in (form, form[4:-4]):  # nor the inner part of an encoded form
            assert piece.encode() not in raw, f"{form!r} leaked into the tape"

    with open_tape(tape) as t:
        m = t.manifest
        stdout = t.stream("stdout").decode()
    assert stdout == f"{PEM.splitlines()[0]}\n{REDACTED}\n{REDACTED}\n"
    warned = sorted(w.path or "" for w in m.warnings if w.kind == "secret_in_output")
    assert warned == ["encoded.txt", "pem-line.txt", "url.txt"]
    assert all(REDACTED in " ".join(p.argv) for p in m.processes if p.argv[:1] == ["/bin/echo"])
    notes = next(e for e in m.inputs if e.path == "notes.txt")
    assert notes.blob is not None  # stored: nothing in it is secret
