"""Identity normalisation shared by providers: how marketing tools compare emails and phone numbers.

A provider matches people by normalised identifiers, not by the text a warehouse happens to hold:
Mailchimp knows `Jane.Doe@Example.com` and `jane.doe@example.com` as one member, Meta and Google
hash `+44 (0)20 7946-0958` and `020 7946 0958` (in the UK) to one user. Mirror bookkeeping and
per-record rejection keys must compare identities the same way, or a run removes someone it has just
updated. Providers build their `Provider.member_identities` hook from these functions.

Phone numbers are parsed with `phonenumbers`, the Python port of Google's libphonenumber, which knows
each country's trunk prefix (the UK `0` in `(0)20`), international call prefixes (`00`, `011`) and
number lengths.
"""

from __future__ import annotations

import phonenumbers

#: ISO 3166-1 alpha-2 regions libphonenumber has metadata for (`GB`, `US`, `DE`, …).
PHONE_REGIONS: frozenset[str] = frozenset(phonenumbers.SUPPORTED_REGIONS)


def normalize_email(value: str) -> str | None:
    """An email address as providers compare it: trimmed and lower-cased; None if it has no `@`.

    Mailchimp's subscriber hash is the MD5 of the lower-cased address
    (https://mailchimp.com/developer/marketing/docs/methods-parameters/#path-parameters), Meta and
    Google hash the trimmed, lower-cased address.
    """
    text = value.strip().lower()
    return text if "@" in text and not text.startswith("@") and not text.endswith("@") else None


def normalize_phone(value: str, default_region: str | None = None) -> str | None:
    """A phone number in E.164 (`+442079460958`), or None when it cannot be a phone number.

    `default_region` (ISO 3166-1 alpha-2, e.g. `GB`) says how to read numbers written without a country
    code (`020 7946 0958`); numbers starting with `+` carry their own. Without a default region, a
    number without `+` is read as if it started with one (`442079460958`, `16505551212`), which is how
    Meta reads digits it is sent. National trunk prefixes are dropped as the country's rules say
    (`+44 (0)20 7946-0958` → `+442079460958`). A number is accepted when its length is possible for
    its country; whether it is assigned is not checked (providers match what they are given).
    """
    text = value.strip()
    if not any(character.isdigit() for character in text):
        return None
    if default_region is None and not text.startswith("+"):
        text = "+" + "".join(character for character in text if character.isdigit()).lstrip("0")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
