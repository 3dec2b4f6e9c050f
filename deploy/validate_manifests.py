"""Validates rendered Kubernetes manifests offline; used by scripts/validate-deploy.sh.

Built-in kinds are checked by kubernetes-validate (the Kubernetes OpenAPI schemas it ships,
strict: unknown fields are errors) for every Kubernetes version given; custom resources, which
those schemas do not cover, against deploy/schemas/ (KEDA's ScaledObject, the Prometheus
Operator's PodMonitor).
A resource with no schema at all is an error, so nothing passes by being skipped.

usage: python validate_manifests.py --kube-version 1.25.0 [--kube-version 1.37.0] FILE...
Prints one line per resource; exits 1 when any resource is invalid.
"""
import argparse
import json
import pathlib
import sys

import jsonschema
import kubernetes_validate
import yaml

CUSTOM_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): pathlib.Path(__file__).parent / "schemas" / "keda-scaledobject-v1alpha1.schema.json",
    # deploy/crd_schema.py from the Prometheus Operator's CRD.
    ("monitoring.coreos.com/v1", "PodMonitor"): pathlib.Path(__file__).parent / "schemas" / "podmonitor-v1.schema.json",
}


def error_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(root)"


def validate_custom(resource: dict, schema_file: pathlib.Path) -> list:
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{error_path(e)}: {e.message}" for e in sorted(validator.iter_errors(resource), key=lambda e: list(e.absolute_path))]


def validate_resource(resource: dict, versions: list) -> list:
    """Returns a list of 'version: path: message' problems, empty when the resource is valid."""
    for field in ("apiVersion", "kind"):
        if not isinstance(resource.get(field), str):
            return [f"missing or non-string {field}"]
    custom = CUSTOM_SCHEMAS.get((resource["apiVersion"], resource["kind"]))
    if custom:
        return [f"{custom.name}: {problem}" for problem in validate_custom(resource, custom)]
    problems = []
    for version in versions:
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"kubernetes {version}: {error_path(error)}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"kubernetes {version}: no schema for {resource['kind']} {resource['apiVersion']}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kube-version", action="append", required=True, dest="versions")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    failed = 0
    checked = 0
    for file in args.files:
        try:
            documents = list(yaml.safe_load_all(pathlib.Path(file).read_text()))
        except yaml.YAMLError as error:
            print(f"FAIL {file}: not YAML: {error}")
            failed += 1
            continue
        for resource in documents:
            if resource is None:
                continue
            checked += 1
            if not isinstance(resource, dict):
                print(f"FAIL {file}: a document is not a mapping")
                failed += 1
                continue
            name = (resource.get("metadata") or {}).get("name", "<no name>")
            label = f"{resource.get('kind')}/{name}"
            problems = validate_resource(resource, args.versions)
            for problem in problems:
                print(f"FAIL {file} {label}: {problem}")
            if problems:
                failed += 1
            else:
                print(f"ok   {file} {label}")
    print(f"{checked - failed} of {checked} resources valid ({', '.join('kubernetes ' + v for v in args.versions)})")
    return 1 if failed or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
