"""Logging filters: what a caller asked for never reaches a log as an NHS number."""

import logging

from phr.nhs_number import mask_nhs_numbers


class MaskNHSNumbers(logging.Filter):
    """Blanks out everything in a record's message that could be an NHS number.

    A request line or path is what the caller typed: a mistaken ``GET
    /fhir/Patient?identifier=<NHS number>`` is refused, but the development server would
    still log its request line, and Django logs the path of a request that failed. The
    message is formatted here, masked, and kept without its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_nhs_numbers(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True
