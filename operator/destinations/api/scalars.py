"""Whole numbers, numbers and booleans read as the API server reads a custom resource's fields.

pydantic's lax mode would take `"5"` for a whole number, `"true"` or `1` for a boolean and `"12.5"` for
a number; the API server refuses each ("must be of type integer", JSON types are not converted), so
`destinations validate`, admission and the operator must refuse them too. These types are pydantic's
strict ones, plus the one conversion the server does make: it decodes a JSON number as an int64 when it
is one, else as a float64, which a `type: integer` field takes when it is whole and within 2^53 - 1
(`3.0` is 3; go-openapi/swag IsFloat64AJSONInteger), and an integer beyond int64 is such a float (not
whole enough: refused). JSON has no NaN or infinity. Reference:
https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AllowInfNan, BeforeValidator, Field, Strict

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: The largest whole number a float64 holds exactly: beyond it the API server does not take a float as
#: an integer.
LARGEST_EXACT_FLOAT_INTEGER = 2**53 - 1

ACCEPTED_INTEGERS = f"a whole number (JSON integer, {INT64_MIN} to {INT64_MAX})"


def json_integer(value: Any) -> Any:
    """`value` as the API server holds a JSON number it takes for an integer; other values unchanged.

    A whole float within 2^53 - 1 becomes that integer. Raises ValueError for an integer beyond int64
    and a whole float beyond 2^53 - 1, which the server reads as floating point and refuses.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        if abs(value) <= LARGEST_EXACT_FLOAT_INTEGER:
            return int(value)
        raise ValueError(
            f"must be {ACCEPTED_INTEGERS}, not the floating-point number {value:.17g}: beyond 2^53 the API "
            "server does not read a number with a fraction or an exponent as whole; write its digits"
        )
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"must be {ACCEPTED_INTEGERS}; {value} does not fit in 64 bits")
    return value


Integer = Annotated[int, BeforeValidator(json_integer), Strict()]
"""A `type: integer` field: a JSON integer (or a whole float within 2^53), never text or a boolean."""
PositiveInteger = Annotated[int, Field(ge=1), Strict(), BeforeValidator(json_integer)]
"""An Integer of at least 1. The bound comes before the validator so that it reaches the CRD as `minimum`
in an optional field too (pydantic cannot express a bound given after a validator in a nullable
field's schema: `min_records: Integer | None = Field(ge=1)` would give the CRD an unknown `ge`)."""
Number = Annotated[float, Strict(), AllowInfNan(False)]
"""A `type: number` field: any JSON number, never text or a boolean."""
Boolean = Annotated[bool, Strict()]
"""A `type: boolean` field: `true` or `false`, never text (`"true"`) or a number (`1`)."""
