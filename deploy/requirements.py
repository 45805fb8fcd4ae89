"""Print the requirements of pyproject.toml's dependencies and the given extras, one per
line, with the package's own extras (helpdesk-qa[st,e5]) resolved: the image build
installs them in a layer of their own, which a change in qa/ then does not rebuild.

    python3 deploy/requirements.py pyproject.toml postgres,onnx > requirements.txt
"""

import re
import sys
import tomllib


def requirements(project: dict, extras: list[str], seen: set[str]) -> list[str]:
    found = []
    for extra in extras:
        if extra in seen:
            continue
        seen.add(extra)
        for requirement in project["optional-dependencies"][extra]:  # KeyError: no such extra
            own = re.fullmatch(rf"{re.escape(project['name'])}\[([^\]]+)\]", requirement.strip())
            found += requirements(project, own.group(1).split(","), seen) if own else [requirement]
    return found


def main() -> None:
    with open(sys.argv[1], "rb") as f:
        project = tomllib.load(f)["project"]
    extras = [e.strip() for e in (sys.argv[2] if len(sys.argv) > 2 else "").split(",") if e.strip()]
    print("\n".join(project["dependencies"] + requirements(project, extras, set())))


if __name__ == "__main__":
    main()
