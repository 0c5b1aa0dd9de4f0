"""Affinities for the sync pods' `podTemplate`: ones the API server refuses, with the problems
`destinations validate` reports (literally), ones we refuse on purpose though it accepts them, and
awkward valid ones. Shared by tests/api/test_pod_template_affinity.py (our checks) and
tests/controller/test_pod_values.py (the real API server's verdict on each).

Pods built from these carry the label `app: sync` (`POD_LABELS`): the API server refuses a
`matchLabelKeys` key also in `labelSelector` only when the pod carries that label.
"""

from __future__ import annotations

from typing import Any

POD_LABELS = {"app": "sync"}

A = "spec.podTemplate.affinity."
REQUIRED_NODES = A + "nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]."
REQUIRED_PODS = A + "podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]."
E0 = REQUIRED_NODES + "matchExpressions[0]."
F0 = REQUIRED_NODES + "matchFields[0]."
NODES = A + "nodeAffinity."
P = REQUIRED_PODS


def _node_term(*expressions: dict[str, Any], fields: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    term: dict[str, Any] = {"matchExpressions": list(expressions)}
    if fields:
        term["matchFields"] = list(fields)
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}


def _pod_term(**term: Any) -> dict[str, Any]:
    return {
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone", **term}]}
    }


LABEL_VALUE_RULE = (
    "must be empty or letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
)
NAME_PART_RULE = (
    "name part must be letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
)

#: (case, affinity, the problems `validate` reports, literally).
REFUSED: list[tuple[str, dict[str, Any], list[str]]] = [
    ("In without values", _node_term({"key": "disk", "operator": "In"}), [
        E0 + "values: values must list at least one label value when operator is In",
    ]),
    ("NotIn with an empty list", _node_term({"key": "disk", "operator": "NotIn", "values": []}), [
        E0 + "values: values must list at least one label value when operator is "
        "NotIn",
    ]),
    ("Exists with values", _node_term({"key": "disk", "operator": "Exists", "values": ["ssd"]}), [
        E0 + "values: values must be left out when operator is Exists (it tests "
        'the key only); got ["ssd"]',
    ]),
    ("DoesNotExist with values", _node_term({"key": "disk", "operator": "DoesNotExist", "values": [""]}), [
        E0 + "values: values must be left out when operator is DoesNotExist (it "
        'tests the key only); got [""]',
    ]),
    ("Gt with two values", _node_term({"key": "cores", "operator": "Gt", "values": ["1", "2"]}), [
        E0 + 'values: values must be exactly one whole number, such as ["3"], '
        'when operator is Gt; got ["1", "2"]',
    ]),
    ("Lt without values", _node_term({"key": "cores", "operator": "Lt"}), [
        E0 + 'values: values must be exactly one whole number, such as ["3"], '
        "when operator is Lt; got []",
    ]),
    ("Lt with a negative number", _node_term({"key": "cores", "operator": "Lt", "values": ["-5"]}), [
        REQUIRED_NODES + f"matchExpressions[0].values[0]: '-5' {LABEL_VALUE_RULE}",
    ]),
    ("an operator in the wrong case", _node_term({"key": "disk", "operator": "in", "values": ["ssd"]}), [
        E0 + 'operator: must be one of: In, NotIn, Exists, DoesNotExist, Gt, Lt '
        '(got "in")',
    ]),
    ("no operator", _node_term({"key": "disk"}), [
        E0 + "operator: is required",
    ]),
    ("no key", _node_term({"operator": "Exists"}), [
        E0 + "key: is required",
    ]),
    ("an empty key", _node_term({"key": "", "operator": "Exists"}), [
        E0 + "key: '' must not be empty: write name or prefix/name, such as team "
        "or example.com/team",
    ]),
    ("a key with a space", _node_term({"key": "disk type", "operator": "Exists"}), [
        REQUIRED_NODES + f"matchExpressions[0].key: 'disk type' {NAME_PART_RULE}",
    ]),
    ("a value that is no label value", _node_term({"key": "disk", "operator": "In", "values": ["ssd!"]}), [
        REQUIRED_NODES + f"matchExpressions[0].values[0]: 'ssd!' {LABEL_VALUE_RULE}",
    ]),
    ("a field other than metadata.name", _node_term(fields=({"key": "metadata.labels", "operator": "In",
                                                             "values": ["a"]},)), [
        F0 + 'key: must be one of: metadata.name (got "metadata.labels")',
    ]),
    ("a field with Exists", _node_term(fields=({"key": "metadata.name", "operator": "Exists"},)), [
        F0 + 'operator: must be one of: In, NotIn (got "Exists")',
    ]),
    ("a field with two names", _node_term(fields=({"key": "metadata.name", "operator": "In",
                                                   "values": ["node-1", "node-2"]},)), [
        F0 + "values: values must be exactly one node name when operator is In "
        '(matchFields compare a node\'s name with one value); got ["node-1", "node-2"]',
    ]),
    ("a field with a name no node can have", _node_term(fields=({"key": "metadata.name", "operator": "NotIn",
                                                                 "values": ["Node_1"]},)), [
        F0 + "values[0]: 'Node_1' must be a Kubernetes name: lower-case letters, "
        "digits, '-' and '.', starting and ending with a letter or digit",
    ]),
    ("no node selector terms",
     {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}, [
        NODES + "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: nodeSelectorTerms "
        "must list at least one term (a node matching any of them qualifies)",
    ]),
    ("a node preference of weight 0",
     {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 0, "preference": {}}]}}, [
        NODES + "preferredDuringSchedulingIgnoredDuringExecution[0].weight: must be at least 1 (got 0)",
    ]),
    ("a pod preference of weight 101", {"podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 101, "podAffinityTerm": {"topologyKey": "zone"}}]}}, [
        A + "podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: must be at most 100 "
        "(got 101)",
    ]),
    ("a pod term without topologyKey",
     {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {}}]}}, [
        A + "podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: is required",
    ]),
    ("an empty topologyKey", _pod_term(topologyKey=""), [
        P + "topologyKey: '' must not be empty: write name or prefix/name, such as team or "
        "example.com/team",
    ]),
    ("a topologyKey with two slashes", _pod_term(topologyKey="a/b/c"), [
        P + "topologyKey: 'a/b/c' must have at most one '/', between a DNS prefix and a name",
    ]),
    ("Gt in a label selector", _pod_term(labelSelector={"matchExpressions": [
        {"key": "tier", "operator": "Gt", "values": ["1"]}]}), [
        P + 'labelSelector.matchExpressions[0].operator: must be one of: In, NotIn, Exists, '
        'DoesNotExist (got "Gt")',
    ]),
    ("In without values in a label selector", _pod_term(labelSelector={"matchExpressions": [
        {"key": "tier", "operator": "In"}]}), [
        P + "labelSelector.matchExpressions[0].values: values must list at least one label value when "
        "operator is In",
    ]),
    ("a selector value with a space", _pod_term(labelSelector={"matchExpressions": [
        {"key": "tier", "operator": "NotIn", "values": ["front end"]}]}), [
        P + f"labelSelector.matchExpressions[0].values[0]: 'front end' {LABEL_VALUE_RULE}",
    ]),
    ("a matchLabels key with two slashes", _pod_term(labelSelector={"matchLabels": {"a/b/c": "x"}}), [
        P + "labelSelector.matchLabels.a/b/c: 'a/b/c' must have at most one '/', between a DNS "
        "prefix and a name",
    ]),
    ("a namespaceSelector value too long", _pod_term(namespaceSelector={"matchLabels": {"team": "x" * 64}}), [
        P + "namespaceSelector.matchLabels.team: '" + "x" * 64 + "' must be at most 63 characters long",
    ]),
    ("namespaces that are no namespace names", _pod_term(namespaces=["team.eu", "Team_EU"]), [
        P + "namespaces[0]: 'team.eu' must not contain dots: a namespace name is lower-case letters, "
        "digits and '-'",
        P + "namespaces[1]: 'Team_EU' must be lower-case letters, digits and '-', starting and "
        "ending with a letter or digit",
    ]),
    ("matchLabelKeys without labelSelector", _pod_term(matchLabelKeys=["app"]), [
        P + "matchLabelKeys: matchLabelKeys needs a labelSelector (its keys are added to it); set "
        "labelSelector, {} to start from every pod",
    ]),
    ("mismatchLabelKeys without labelSelector", _pod_term(mismatchLabelKeys=["app"]), [
        P + "mismatchLabelKeys: mismatchLabelKeys needs a labelSelector (its keys are added to it); "
        "set labelSelector, {} to start from every pod",
    ]),
    ("a matchLabelKeys key also in matchLabels",
     _pod_term(labelSelector={"matchLabels": {"app": "sync"}}, matchLabelKeys=["app"]), [
        P + "matchLabelKeys[0]: matchLabelKeys[0] 'app' is also in labelSelector; keep it in one of "
        "them",
    ]),
    ("a matchLabelKeys key also in matchExpressions", _pod_term(
        labelSelector={"matchExpressions": [{"key": "app", "operator": "Exists"}]}, matchLabelKeys=["app"]), [
        P + "matchLabelKeys[0]: matchLabelKeys[0] 'app' is also in labelSelector; keep it in one of "
        "them",
    ]),
    ("a matchLabelKeys key twice", _pod_term(labelSelector={}, matchLabelKeys=["app", "app"]), [
        P + "matchLabelKeys[1]: matchLabelKeys[1] 'app' is listed twice",
    ]),
    ("a key in matchLabelKeys and mismatchLabelKeys",
     _pod_term(labelSelector={}, matchLabelKeys=["app"], mismatchLabelKeys=["app"]), [
        P + "matchLabelKeys[0]: matchLabelKeys[0] 'app' is also in mismatchLabelKeys; a key can only "
        "be in one of them",
    ]),
    ("a matchLabelKeys key with a space", _pod_term(labelSelector={}, matchLabelKeys=["app name"]), [
        P + f"matchLabelKeys[0]: 'app name' {NAME_PART_RULE}",
    ]),
]  # fmt: skip

#: Refused on purpose though the API server accepts them (docs/api-notes.md).
STRICTER_THAN_THE_SERVER: list[tuple[str, dict[str, Any], list[str]]] = [
    ("Gt with a word", _node_term({"key": "cores", "operator": "Gt", "values": ["many"]}), [
        E0 + "values[0]: values[0] 'many' must be a whole number written in "
        "digits (0 to 9223372036854775807) when operator is Gt: the scheduler compares node labels as "
        "numbers",
    ]),
    ("Lt with a fraction", _node_term({"key": "cores", "operator": "Lt", "values": ["1.5"]}), [
        E0 + "values[0]: values[0] '1.5' must be a whole number written in "
        "digits (0 to 9223372036854775807) when operator is Lt: the scheduler compares node labels as "
        "numbers",
    ]),
    ("Gt beyond int64", _node_term({"key": "cores", "operator": "Gt", "values": ["9223372036854775808"]}), [
        E0 + "values[0]: values[0] '9223372036854775808' must be a whole number "
        "written in digits (0 to 9223372036854775807) when operator is Gt: the scheduler compares node "
        "labels as numbers",
    ]),
    ("a matchLabelKeys key in the selector the pod does not carry",
     _pod_term(labelSelector={"matchLabels": {"shard": "1"}}, matchLabelKeys=["shard"]), [
        P + "matchLabelKeys[0]: matchLabelKeys[0] 'shard' is also in labelSelector; keep it in one "
        "of them",
    ]),
]  # fmt: skip


#: Valid, if unusual: each was accepted by kube-apiserver 1.36 in a Pod.
ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("every node operator", _node_term(
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]},
        {"key": "disk", "operator": "NotIn", "values": [""]},
        {"key": "example.com/gpu", "operator": "Exists"},
        {"key": "spot", "operator": "DoesNotExist"},
        {"key": "cores", "operator": "Gt", "values": ["3"]},
        {"key": "cores", "operator": "Lt", "values": ["0064"]},
        fields=({"key": "metadata.name", "operator": "NotIn", "values": ["node-1.example.com"]},),
    )),
    ("an empty term, and a preference without one", {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1}, {"weight": 100, "preference": {}}],
    }}),
    ("pod terms at their edges", {
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "topology.kubernetes.io/zone"},
            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {}, "namespaceSelector": {},
             "namespaces": ["team", "a" * 63], "matchLabelKeys": ["app", "example.com/tier"]},
        ]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "podAffinityTerm": {
                "topologyKey": "zone",
                "labelSelector": {"matchLabels": {"app": "sync", "empty": ""},
                                  "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]},
                "mismatchLabelKeys": ["app"]}},
        ]},
    }),
    ("an empty affinity", {}),
    ("nulls left out", {"nodeAffinity": None, "podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone", "labelSelector": None}]}}),
]  # fmt: skip
