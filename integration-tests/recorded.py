"""Replays scenarios of AWS's recorded answers (the reference file
`aws-lambda-recorded.json`) against lamb and compares what boto3 parsed.

The recording holds, per test case, each answer as boto3 parsed it, with the
values that differ from run to run already replaced by placeholders
(`<function-name:1>`, `<uuid:3>`, `<region>`, account `111111111111`, ...).
It holds no requests: each scenario in test_recorded.py rebuilds them.

The one normalisation, applied to every comparison:
- `ResponseMetadata` keeps only `HTTPStatusCode` (request ids, headers and
  retry counts are the transport's);
- on lamb's side, the region and partition of its ARNs become `<region>` and
  `<partition>`, its account id becomes `111111111111`, and each name the
  scenario registers becomes the placeholder the recording uses for it;
- a recorded string compares as a template: every `<...>` placeholder
  matches one ARN segment (no `:`, no whitespace) or a placeholder, except the ones for whole
  values that contain colons (`<location>`, `<layer-location>`,
  `<log-result:N>`), which match anything; the recorded values `date` and
  `datetime` (the recording's timestamps) match any timestamp; a recorded placeholder in place
  of a number (`<code-size>`) matches any number;
- dict keys must be the same sets, lists the same length, other values equal.
"""

import json
import os
import re
from pathlib import Path

from botocore.exceptions import ClientError

REFERENCE = Path("shared") / "reference" / "aws-lambda-recorded.json"

RECORDED_ACCOUNT = "111111111111"

# Placeholders that stand for whole values which may contain colons.
WHOLE_VALUE = re.compile(r"<(location|layer-location|log-result(:\d+)?|log-stream-name(:\d+)?)>")
PLACEHOLDER = re.compile(r"<[^<>]+>")


def reference_path():
    """Where LAMB_RECORDED names it, else the first `shared/reference/` in a
    folder above the checkout (the project's shared tree); None if neither."""
    if os.environ.get("LAMB_RECORDED"):
        return Path(os.environ["LAMB_RECORDED"])
    for up in Path(__file__).resolve().parents:
        if (up / REFERENCE).is_file():
            return up / REFERENCE
    return None


_LOADED = {}


def load():
    if not _LOADED:
        _LOADED.update(json.loads(reference_path().read_text()))
    return _LOADED


def template(recorded: str):
    """A recorded string as a regex that its placeholders widen."""
    out, pos = [], 0
    for m in PLACEHOLDER.finditer(recorded):
        out.append(re.escape(recorded[pos:m.start()]))
        # lamb's side may hold the same placeholder (a registered name).
        out.append(".*" if WHOLE_VALUE.fullmatch(m.group()) else r"(?:<[^<>]*>|[^:\s]*)")
        pos = m.end()
    out.append(re.escape(recorded[pos:]))
    return re.compile("".join(out), re.S)


def diff(recorded, got, path="$"):
    """The differences between a recorded answer and lamb's normalised one, as
    a list of readable lines (empty when they agree)."""
    if isinstance(recorded, dict):
        if not isinstance(got, dict):
            return [f"{path}: recorded an object, got {got!r}"]
        out = []
        for k in sorted(set(recorded) | set(got)):
            if k not in got:
                out.append(f"{path}.{k}: missing (recorded {recorded[k]!r})")
            elif k not in recorded:
                out.append(f"{path}.{k}: extra {got[k]!r}")
            else:
                out += diff(recorded[k], got[k], f"{path}.{k}")
        return out
    if isinstance(recorded, list):
        if not isinstance(got, list) or len(got) != len(recorded):
            return [f"{path}: recorded {recorded!r}, got {got!r}"]
        return [d for i, (r, g) in enumerate(zip(recorded, got)) for d in diff(r, g, f"{path}[{i}]")]
    if isinstance(recorded, str):
        if recorded in ("date", "datetime") and isinstance(got, (str, int, float)) or (
            recorded in ("date", "datetime") and hasattr(got, "isoformat")
        ):
            return []
        if PLACEHOLDER.search(recorded) and isinstance(got, (int, float)) and not isinstance(got, bool):
            return []
        if isinstance(got, str) and template(recorded).fullmatch(got):
            return []
        return [f"{path}: recorded {recorded!r}, got {got!r}"]
    if recorded == got and type(recorded) is type(got):
        return []
    return [f"{path}: recorded {recorded!r}, got {got!r}"]


class Replay:
    """One recorded case replayed: `call` runs an operation and keeps boto3's
    parsed answer (or the error's) under the recording's key; `check`
    compares them all."""

    def __init__(self, lam, case, region="us-east-1", account=None, tally=None):
        self.lam = lam
        self.case = case
        self.recorded = {k: v for k, v in load()[case].items() if not k.startswith("_")}
        self.region = region
        self.account = account
        self.names = []  # (lamb's value, recorded placeholder), longest first
        self.got = {}
        self.tally = tally

    def name(self, value, placeholder):
        """Registers a value lamb answers with that the recording replaced."""
        self.names.append((value, placeholder))
        self.names.sort(key=lambda p: -len(p[0]))
        return value

    def call(self, key, op, **kw):
        try:
            out = getattr(self.lam, op)(**kw)
        except ClientError as e:
            out = e.response
        if "Payload" in out and hasattr(out["Payload"], "read"):
            raw = out["Payload"].read()
            try:
                out["Payload"] = json.loads(raw)
            except ValueError:
                out["Payload"] = raw.decode(errors="replace")
        if key is not None:
            self.got[key] = out
        return out

    def skip(self, key, why):
        """Leaves a recorded answer out of the comparison, saying why (the
        recording wraps it in the recorded test's own fixture objects)."""
        assert key in self.recorded, key
        del self.recorded[key]
        self.skipped = getattr(self, "skipped", {}) | {key: why}

    def keep(self, key, value):
        self.got[key] = value

    def normalise(self, v):
        if isinstance(v, dict):
            out = {k: self.normalise(x) for k, x in v.items()}
            if "ResponseMetadata" in out:
                out["ResponseMetadata"] = {"HTTPStatusCode": v["ResponseMetadata"]["HTTPStatusCode"]}
            return out
        if isinstance(v, list):
            return [self.normalise(x) for x in v]
        if isinstance(v, str):
            v = v.replace("arn:aws:", "arn:<partition>:").replace(f":{self.region}:", ":<region>:")
            if self.account:
                v = v.replace(self.account, RECORDED_ACCOUNT)
            for value, placeholder in self.names:
                v = v.replace(value, placeholder)
            return v
        return v

    def results(self):
        """{key: [differences]} for every recorded key."""
        return {
            k: (diff(r, self.normalise(self.got[k])) if k in self.got else ["not replayed"])
            for k, r in self.recorded.items()
        }

    def check(self):
        """Asserts that every recorded answer agrees; counts them in the tally."""
        results = self.results()
        if self.tally is not None:
            self.tally["total"] += len(results)
            self.tally["agree"] += sum(1 for d in results.values() if not d)
        bad = [f"{k}: {line}" for k, d in results.items() for line in d]
        assert not bad, "\n".join(bad)
