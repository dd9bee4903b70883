"""A person's contact details in words: the address a letter would go to and the phone
numbers and email addresses they gave, never the FHIR structure that holds them."""

from __future__ import annotations


def address_words(addresses) -> str:
    """The first address still in use, as written on an envelope: its text, else its
    lines, town and postcode joined by commas ("1 High Street, Leeds, LS1 4AP")."""
    if isinstance(addresses, dict):
        addresses = [addresses]
    for address in addresses if isinstance(addresses, list) else ():
        if isinstance(address, dict) and address.get("use") != "old":
            if address.get("text"):
                return str(address["text"])
            parts = [*map(str, address.get("line") or ()), address.get("city"), address.get("postalCode")]
            return ", ".join(str(p) for p in parts if p)
    return ""


def contact_words(telecom) -> str:
    """Every phone number and email address still in use, joined by commas, each once."""
    if isinstance(telecom, dict):
        telecom = [telecom]
    found = [
        str(point["value"]).strip()
        for point in (telecom if isinstance(telecom, list) else ())
        if isinstance(point, dict) and point.get("value") and point.get("use") != "old"
    ]
    return ", ".join(dict.fromkeys(v for v in found if v))
