"""A small client for the VMM's API socket, and the response checker that
holds every answer to the schemas in firecracker-api.yaml.

Used by api_test.py and output_test.py, whose command line run_case()
reads. Needs Debian's python3-yaml and python3-jsonschema (tools/setup
installs them).
"""
import http.client
import json
import os
import socket
import sys
import tempfile
import time

import jsonschema
import yaml

SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "firecracker-api.yaml")


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def wait_for_socket(path, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                s.close()
                return True
            except OSError:
                pass
        time.sleep(0.005)
    return False


def wait_for_output(output, proc, text, timeout=20):
    """Waits until output() holds text; stops early once proc has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in output():
            return True
        if proc.poll() is not None:
            return text in output()
        time.sleep(0.02)
    return False


def call(sock, method, target, body=None, timeout=10):
    """One request on a fresh connection: (status, body text)."""
    conn = UnixConnection(sock, timeout=timeout)
    try:
        conn.request(method, target, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def run_case(name, case, *args):
    """Runs case(*args, tmp, Schemas()) in a fresh temporary folder; prints
    PASS or FAIL (an AssertionError's message) and returns the exit status."""
    with tempfile.TemporaryDirectory(prefix="vmm-test-") as tmp:
        try:
            case(*args, tmp, Schemas())
        except AssertionError as e:
            print(f"FAIL: {name}: {e}")
            return 1
    print(f"PASS: {name}")
    return 0


class Schemas:
    """Validates a JSON value against one of the spec's definitions, and also
    refuses fields the definition does not name (the schema allows extras;
    we promise the exact shapes)."""

    def __init__(self, path=SPEC):
        with open(path) as f:
            self.spec = yaml.safe_load(f)
        self.definitions = self.spec["definitions"]

    def check(self, name, value):
        schema = {"$ref": "#/definitions/" + name, "definitions": self.definitions}
        jsonschema.Draft4Validator(schema).validate(value)
        self._no_extra_fields(self.definitions[name], value, name)

    def _resolve(self, schema):
        while "$ref" in schema:
            schema = self.definitions[schema["$ref"].split("/")[-1]]
        return schema

    def _no_extra_fields(self, schema, value, where):
        schema = self._resolve(schema)
        if isinstance(value, dict) and "properties" in schema:
            if schema.get("additionalProperties"):
                return
            for key, item in value.items():
                if key not in schema["properties"]:
                    raise AssertionError(f"{where}: field '{key}' is not in the schema")
                self._no_extra_fields(schema["properties"][key], item, f"{where}.{key}")
        elif isinstance(value, list) and "items" in schema:
            for i, item in enumerate(value):
                self._no_extra_fields(schema["items"], item, f"{where}[{i}]")


class Api:
    """One keep-alive connection; every response is checked: 204 has no body,
    200 has the named schema, errors are {"fault_message": "..."}."""

    def __init__(self, path, schemas):
        self.path = path
        self.schemas = schemas
        self.conn = UnixConnection(path)

    def request(self, method, target, body=None, raw=None):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            self.conn.request(method, target, body=data, headers=headers)
            response = self.conn.getresponse()
        except (ConnectionError, http.client.HTTPException):
            self.conn.close()
            self.conn = UnixConnection(self.path)
            self.conn.request(method, target, body=data, headers=headers)
            response = self.conn.getresponse()
        text = response.read().decode()
        status = response.status
        if status == 204:
            assert text == "", f"{method} {target}: 204 with a body: {text!r}"
            return status, None
        value = json.loads(text)
        if status >= 400:
            self.schemas.check("Error", value)
            assert isinstance(value.get("fault_message"), str) and value["fault_message"], value
        return status, value

    def ok(self, method, target, body=None, schema=None):
        status, value = self.request(method, target, body)
        expected = 200 if schema else 204
        assert status == expected, f"{method} {target}: {status} {value}"
        if schema:
            self.schemas.check(schema, value)
        return value

    def fails(self, method, target, body=None, contains="", raw=None):
        status, value = self.request(method, target, body, raw=raw)
        assert status == 400, f"{method} {target} {body if raw is None else raw!r}: expected 400, got {status} {value}"
        message = value["fault_message"]
        assert contains.lower() in message.lower(), \
            f"{method} {target}: fault_message {message!r} lacks {contains!r}"
        return message


def run_script_case(cases, what):
    """`script VMM GUEST_DIR CASE`: run_case() of cases[CASE] with (vmm,
    guests); 77 (skipped) without a usable /dev/kvm. `what` says which
    tests need it."""
    vmm, guests, case = sys.argv[1:4]
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print(f"SKIPPED: /dev/kvm is missing or not accessible: {what} need KVM")
        return 77
    return run_case(case, cases[case], vmm, guests)
