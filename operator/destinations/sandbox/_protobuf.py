"""Just enough Kubernetes protobuf to accept what kubectl's typed clients send.

kubectl's generators (`kubectl create namespace|secret|configmap|serviceaccount`) POST their objects as
`application/vnd.kubernetes.protobuf` and do not fall back to JSON, so the sandbox decodes those few
kinds: a `k8s\\x00` magic prefix, a `runtime.Unknown` envelope and the object's message, using the field
numbers of k8s.io/api's generated.proto. Other kinds get 415, as a server without that codec would
answer. Responses are always JSON (kubectl accepts both).
"""

from __future__ import annotations

import base64
from typing import Any

Json = dict[str, Any]
#: field number → (JSON name, kind, nested schema name)
Schema = dict[int, tuple[str, str, str]]

_MAGIC = b"k8s\x00"

_SCHEMAS: dict[str, Schema] = {
    "Unknown": {
        1: ("typeMeta", "message", "TypeMeta"),
        2: ("raw", "raw", ""),
        3: ("contentEncoding", "string", ""),
        4: ("contentType", "string", ""),
    },
    "TypeMeta": {1: ("apiVersion", "string", ""), 2: ("kind", "string", "")},
    "ObjectMeta": {
        1: ("name", "string", ""),
        2: ("generateName", "string", ""),
        3: ("namespace", "string", ""),
        5: ("uid", "string", ""),
        6: ("resourceVersion", "string", ""),
        7: ("generation", "int", ""),
        11: ("labels", "map_string", ""),
        12: ("annotations", "map_string", ""),
        13: ("ownerReferences", "repeated_message", "OwnerReference"),
        14: ("finalizers", "repeated_string", ""),
    },
    "OwnerReference": {
        1: ("kind", "string", ""),
        3: ("name", "string", ""),
        4: ("uid", "string", ""),
        5: ("apiVersion", "string", ""),
        6: ("controller", "bool", ""),
        7: ("blockOwnerDeletion", "bool", ""),
    },
    "Namespace": {1: ("metadata", "message", "ObjectMeta"), 2: ("spec", "message", "NamespaceSpec")},
    "NamespaceSpec": {1: ("finalizers", "repeated_string", "")},
    "Secret": {
        1: ("metadata", "message", "ObjectMeta"),
        2: ("data", "map_bytes", ""),
        3: ("type", "string", ""),
        4: ("stringData", "map_string", ""),
        5: ("immutable", "bool", ""),
    },
    "ConfigMap": {
        1: ("metadata", "message", "ObjectMeta"),
        2: ("data", "map_string", ""),
        3: ("binaryData", "map_bytes", ""),
        4: ("immutable", "bool", ""),
    },
    "ServiceAccount": {
        1: ("metadata", "message", "ObjectMeta"),
        2: ("secrets", "repeated_message", "ObjectReference"),
        3: ("imagePullSecrets", "repeated_message", "LocalObjectReference"),
        4: ("automountServiceAccountToken", "bool", ""),
    },
    "ObjectReference": {
        1: ("kind", "string", ""),
        2: ("namespace", "string", ""),
        3: ("name", "string", ""),
        4: ("uid", "string", ""),
    },
    "LocalObjectReference": {1: ("name", "string", "")},
}

SUPPORTED_KINDS = frozenset({"Namespace", "Secret", "ConfigMap", "ServiceAccount"})


class ProtobufError(ValueError):
    pass


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    fields: list[tuple[int, int | bytes]] = []
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
            fields.append((number, value))
        elif wire_type == 2:
            length, position = _varint(data, position)
            fields.append((number, data[position : position + length]))
            position += length
        elif wire_type == 1:
            position += 8
        elif wire_type == 5:
            position += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire_type}")
    return fields


def _map_entry(data: bytes) -> tuple[str, bytes]:
    key, value = "", b""
    for number, raw in _fields(data):
        if isinstance(raw, bytes):
            if number == 1:
                key = raw.decode()
            elif number == 2:
                value = raw
    return key, value


def _decode(data: bytes, schema_name: str) -> Json:
    schema = _SCHEMAS[schema_name]
    result: Json = {}
    for number, raw in _fields(data):
        if number not in schema:
            continue
        name, kind, nested = schema[number]
        if kind == "string" and isinstance(raw, bytes):
            if raw:  # gogo-protobuf writes empty strings too; JSON clients would omit them
                result[name] = raw.decode()
        elif (kind == "raw" and isinstance(raw, bytes)) or (kind == "int" and isinstance(raw, int)):
            result[name] = raw
        elif kind == "bool" and isinstance(raw, int):
            result[name] = bool(raw)
        elif kind == "message" and isinstance(raw, bytes):
            result[name] = _decode(raw, nested)
        elif kind == "repeated_message" and isinstance(raw, bytes):
            result.setdefault(name, []).append(_decode(raw, nested))
        elif kind == "repeated_string" and isinstance(raw, bytes):
            result.setdefault(name, []).append(raw.decode())
        elif kind in ("map_string", "map_bytes") and isinstance(raw, bytes):
            key, value = _map_entry(raw)
            result.setdefault(name, {})[key] = (
                value.decode() if kind == "map_string" else base64.b64encode(value).decode()
            )
    return result


def decode_object(body: bytes) -> Json:
    """Decode a protobuf-encoded object of a supported kind into its JSON form."""
    if not body.startswith(_MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    envelope = _decode(body[len(_MAGIC) :], "Unknown")
    type_meta = envelope.get("typeMeta") or {}
    kind = type_meta.get("kind", "")
    if kind not in SUPPORTED_KINDS:
        raise ProtobufError(f"the sandbox cannot decode {kind or 'this kind'} from protobuf; send JSON")
    obj = _decode(envelope.get("raw", b""), kind)
    return {"apiVersion": type_meta.get("apiVersion", "v1"), "kind": kind, **obj}
