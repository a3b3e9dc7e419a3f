"""`make mutation`: mutmut over the given modules, or parts of one (a prefix of mutmut's mutant
names: `service.http.middleware.xǁRequireApiKeyǁ` is that class), then the score of each and
every mutant that survived. The [tool.mutmut] section of pyproject.toml says which files may be
mutated and what the tests read. Fails when one kills under 90% of its mutants, or when a
survivor is not named in mutation-survivors.txt with the reason it is harmless.

    python -m harness.mutation service.http.uploads contract.novelty
"""

import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXPLAINED = REPO / "mutation-survivors.txt"
MIN_SCORE = 0.9
MUTMUT = [sys.executable, "-m", "mutmut"]
# "    service.http.middleware.xǁIntakeǁ_limited__mutmut_12: survived"
RESULT = re.compile(r"^\s*(?P<mutant>\S+): (?P<status>[\w ]+)$")


def explained() -> dict[str, str]:
    """Each harmless survivor's name and why, one per line: `NAME  reason`; # starts a comment."""
    reasons = {}
    for line in EXPLAINED.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            reasons[name] = reason.strip()
    return reasons


def results(parts: list[str]) -> dict[str, dict[str, str]]:
    """Each part's mutants and what became of them."""
    listing = subprocess.run([*MUTMUT, "results", "--all", "true"], cwd=REPO, capture_output=True, text=True)
    by_part: dict[str, dict[str, str]] = defaultdict(dict)
    for line in listing.stdout.splitlines():
        match = RESULT.match(line)
        part = next((part for part in parts if match and match["mutant"].startswith(part)), None)
        if part:
            by_part[part][match["mutant"]] = match["status"]
    return by_part


def main(modules: list[str]) -> int:
    started = time.monotonic()
    subprocess.run([*MUTMUT, "run", *(f"{module}*" for module in modules)], cwd=REPO, check=True)
    minutes = (time.monotonic() - started) / 60
    reasons = explained()
    failed = False
    print(f"\nmutation testing of {len(modules)} modules in {minutes:.1f} min")
    found = results(modules)
    for module in modules:
        statuses = found.get(module, {})
        counts = Counter(statuses.values())
        caught = counts["killed"] + counts["timeout"]  # a mutant that hangs the tests is caught too
        escaped = counts["survived"] + counts["no tests"]
        score = caught / (caught + escaped) if caught + escaped else 0.0
        verdict = "" if score >= MIN_SCORE else "  (under 90%)"
        print(f"  {module:48} {score:6.1%} of {caught + escaped} mutants killed{verdict}")
        failed |= score < MIN_SCORE
        for mutant, status in sorted(statuses.items()):
            if status in ("survived", "no tests"):
                why = reasons.get(mutant)
                print(f"    {status}: {mutant}: {why or 'NOT EXPLAINED in ' + EXPLAINED.name}")
                failed |= why is None
    return int(failed)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
