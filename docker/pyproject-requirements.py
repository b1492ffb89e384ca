"""pyproject-requirements.py PYPROJECT EXTRAS: print the harness's requirements (its dependencies plus those of
the comma-separated EXTRAS), one per line, read from pyproject.toml.

Why: the images install the harness's third-party requirements in a layer of their own, before the harness's
source is copied in, so that a change to the source rebuilds a small layer instead of reinstalling PyTorch and
its CUDA libraries. Requirements on the harness itself (``harness[...]`` in an extra) are expanded.

Python 3.11 has tomllib; Python 3.10 (the paper image's) reads the file with pip's own TOML reader.
"""

import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib


def requirements(project: dict, extras: list[str]) -> list[str]:
    found: list[str] = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    pending = list(extras)
    seen: set[str] = set()
    while pending:
        extra = pending.pop(0)
        if extra in seen:
            continue
        if extra not in optional:
            raise SystemExit(f"pyproject-requirements: no extra {extra!r} in pyproject.toml ({', '.join(optional)})")
        seen.add(extra)
        for requirement in optional[extra]:
            name, _, rest = requirement.partition("[")
            if name.strip() == project["name"]:
                pending += rest.rstrip("]").split(",")
            elif requirement not in found:
                found.append(requirement)
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: pyproject-requirements.py PYPROJECT EXTRA[,EXTRA...]", file=sys.stderr)
        return 2
    with open(argv[0], "rb") as f:
        project = tomllib.load(f)["project"]
    print("\n".join(requirements(project, [e for e in argv[1].split(",") if e])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
