"""The one rendering layer: what is stored (FHIR JSON, dates, codes) put into words people
read. Every page, share view, printable page, letter, notification and email calls it;
nothing else formats a date, a value or a concept for a person."""
